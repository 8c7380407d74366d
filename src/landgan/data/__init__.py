"""Datasets: prepared image folders and the built-in procedural landscapes."""
