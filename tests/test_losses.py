import math

import torch

from landgan.losses import LOSSES


def test_bce_at_zero_logits_is_two_log_two():
    d, g = LOSSES["bce"]
    z = torch.zeros(8)
    assert math.isclose(d(z, z).item(), 2 * math.log(2), rel_tol=1e-6)
    assert math.isclose(g(z).item(), math.log(2), rel_tol=1e-6)


def test_bce_is_finite_for_confident_logits():
    d, _ = LOSSES["bce"]
    assert torch.isfinite(d(torch.full((4,), 1e4), torch.full((4,), -1e4)))
    assert d(torch.full((4,), 50.0), torch.full((4,), -50.0)).item() < 1e-6


def test_hinge_and_wasserstein_values():
    d, g = LOSSES["hinge"]
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.0])
    assert math.isclose(d(real, fake).item(), (0 + 0.5) / 2 + (0 + 1) / 2)
    assert math.isclose(g(fake).item(), 1.0)
    d, g = LOSSES["wasserstein"]
    assert math.isclose(d(real, fake).item(), -1.0 - 1.25)
