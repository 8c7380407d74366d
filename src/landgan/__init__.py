"""landgan: train GANs that generate landscape pictures, on a CPU or a GPU."""

__version__ = "0.2.2"
