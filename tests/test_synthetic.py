"""Tests for the procedural landscapes: shapes, determinism and exact composition labels."""

import dataclasses

import numpy as np
import pytest

from landgan.data.dataset import ImageDataset
from landgan.data.synthetic import (
    ELEMENTS,
    SIZES,
    SceneParams,
    fractions_from_map,
    make_synthetic_dataset,
    render,
    render_seeds,
    sample_params,
)
from landgan.errors import UserError


@pytest.mark.parametrize("size", SIZES)
def test_shapes_and_dtypes(size):
    images, fractions = render_seeds([0, 1, 2], size)
    assert images.shape == (3, size, size, 3) and images.dtype == np.uint8
    assert fractions.shape == (3, len(ELEMENTS)) and fractions.dtype == np.float32
    _, elem = render([sample_params(0)], size)
    assert elem.shape == (1, size, size) and elem.dtype == np.uint8


@pytest.mark.parametrize("size", [48, 129, 0, 512])
def test_invalid_size_is_a_user_error(size):
    with pytest.raises(UserError, match="32, 64, 128, 256"):
        render_seeds([0], size)


def test_same_seed_same_image():
    a, fa = render_seeds([7, 8], 64)
    b, fb = render_seeds([7, 8], 64)
    assert np.array_equal(a, b) and np.array_equal(fa, fb)
    assert sample_params(7) == sample_params(7)


@pytest.mark.parametrize("size", SIZES)
def test_image_independent_of_batch(size):
    seeds = list(range(100, 140))
    batch, fb = render_seeds(seeds, size)
    for i in (0, 17, 39):
        alone, fa = render_seeds([seeds[i]], size)
        assert np.array_equal(alone[0], batch[i]), f"seed {seeds[i]} differs inside a batch"
        assert np.array_equal(fa[0], fb[i])


def test_batch_larger_than_a_chunk_matches_single_renders():
    seeds = list(range(300))  # more than one internal chunk at 64 px
    batch, _ = render_seeds(seeds, 64)
    for i in (0, 31, 32, 255, 256, 299):
        assert np.array_equal(render_seeds([i], 64)[0][0], batch[i])


def test_fractions_sum_to_one_and_match_the_map():
    params = [sample_params(s) for s in range(50)]
    images, elem = render(params, 64)
    fractions = fractions_from_map(elem)
    assert np.all(fractions.sum(1) == 1.0)
    for m, f in zip(elem, fractions):
        counts = np.bincount(m.ravel(), minlength=len(ELEMENTS))
        assert np.array_equal(f, (counts / m.size).astype(np.float32))
    seeded_images, seeded = render_seeds(range(50), 64)  # scenes drawn a chunk at a time
    assert np.array_equal(seeded, fractions) and np.array_equal(seeded_images, images)


@pytest.mark.parametrize("size", SIZES)
def test_hand_built_half_sky_half_lake(size):
    scene = SceneParams(time_of_day="dusk", cloud_cover=0.6, lake_level=0.5)
    _, elem = render(scene, size)
    frac = fractions_from_map(elem)[0]
    assert frac.tolist() == [0.5, 0.0, 0.0, 0.5, 0.0]
    assert (elem[0, : size // 2] == 0).all() and (elem[0, size // 2 :] == 3).all()


def test_hand_built_flat_ridge_lake_and_meadow():
    # One flat ridge from a quarter down, water from half way, a flat meadow edge
    # (no trees) from three quarters: each a quarter of the image.
    scene = SceneParams(
        ridge_heights=(0.25,),
        ridge_amplitudes=(0.0,),
        ridge_roughness=(0.5,),
        ridge_frequencies=(1.0,),
        ridge_phases=((0.0,) * 8,),
        lake_level=0.5,
        vegetation_level=0.75,
        tree_height=0.0,
        grass_height=0.0,
    )
    images, elem = render(scene, 64)
    assert fractions_from_map(elem)[0].tolist() == [0.25, 0.25, 0.0, 0.25, 0.25]
    # A snow line above every mountain pixel turns the whole ridge to snow.
    snowy = dataclasses.replace(scene, snow_line=0.6)
    assert fractions_from_map(render(snowy, 64)[1])[0].tolist() == [0.25, 0.0, 0.25, 0.25, 0.25]
    # The lake mirrors the ridge, slightly darkened.
    assert images[0, 32].mean() < images[0, 31].mean()


def test_every_element_appears_across_seeds():
    _, fractions = render_seeds(range(200), 32)
    present = (fractions > 0).sum(0)
    for name, count in zip(ELEMENTS, present):
        assert count > 0, f"{name} never appears"
    assert (fractions[:, 0] > 0).all(), "every scene shows some sky"


def test_different_seeds_give_different_images():
    images, fractions = render_seeds(range(20), 64)
    flat = images.reshape(20, -1)
    assert len({row.tobytes() for row in flat}) == 20
    assert len({row.tobytes() for row in fractions}) == 20


@pytest.mark.parametrize("seed", [-1, 2**64])
def test_seed_out_of_range_is_rejected(seed):
    with pytest.raises(UserError, match="seeds"):
        sample_params(seed)
    assert sample_params(2**64 - 1) != sample_params(0)


def test_hand_built_scene_is_validated():
    with pytest.raises(ValueError, match="time_of_day"):
        SceneParams(time_of_day="noon")
    with pytest.raises(ValueError, match="ridge"):
        SceneParams(ridge_heights=(0.3, 0.4), ridge_amplitudes=(0.1,))


def test_make_synthetic_dataset():
    ds = make_synthetic_dataset(10, 32, seed=3)
    assert isinstance(ds, ImageDataset) and len(ds) == 10 and ds.resolution == 32
    assert ds.conditions.shape == (10, len(ELEMENTS)) and ds.conditions.dtype == np.float32
    assert ds.condition_names == list(ELEMENTS) and ds.labels is None
    assert ds.name == "synthetic" and ds.meta == {"source": "synthetic", "seed": 3}
    again = make_synthetic_dataset(10, 32, seed=3)
    assert np.array_equal(ds.images, again.images)
    other = make_synthetic_dataset(10, 32, seed=4)
    assert not np.array_equal(ds.images, other.images)
    with pytest.raises(UserError):
        make_synthetic_dataset(10, 48)
