import pytest
import torch

from landgan.errors import UserError
from landgan.models import MODELS, NetArgs, build_models


def _cfg(model, res):
    return model, NetArgs(res, z_dim=100, g_width=16, d_width=16)


@pytest.mark.parametrize("model,res", [(m, r) for m, s in MODELS.items() for r in s.resolutions])
def test_forward_shapes(model, res):
    G, D = build_models(*_cfg(model, res))
    x = G(torch.randn(3, 100))
    assert x.shape == (3, 3, res, res)
    assert x.min() >= -1 and x.max() <= 1  # tanh output
    if MODELS[model].trainer == "gan":
        assert D(x).shape == (3,)


def test_unsupported_resolution_is_a_user_error():
    with pytest.raises(UserError, match="does not support 128 px"):
        build_models(*_cfg("dcgan4", 128))
    with pytest.raises(UserError, match="unknown model"):
        build_models(*_cfg("nope", 64))


def test_dcgan_layer_counts():
    G4, _ = build_models(*_cfg("dcgan4", 64))
    G5, _ = build_models(*_cfg("dcgan5", 128))
    count = lambda g: sum(isinstance(m, torch.nn.ConvTranspose2d) for m in g.modules())
    assert (count(G4), count(G5)) == (4, 5)
