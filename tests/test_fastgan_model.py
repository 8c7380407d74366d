"""FastGAN: shapes, skip-layer excitation, the self-supervised decoders, conditions, ONNX."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import blobs
from landgan.models.fastgan import SLE_PAIRS, FastGANDiscriminator, FastGANGenerator, build_fastgan
from landgan.models.spec import NetArgs

Z = 16


def _settled(net: torch.nn.Module, *inputs: torch.Tensor) -> torch.nn.Module:
    """``net`` in eval mode with BN statistics from one batch: with the fresh (0, 1)
    statistics of an untrained net, eval outputs shrink to ~0 and hide differences."""
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # a plain average: one batch sets the statistics
    with torch.no_grad():
        net.train()(*inputs)
    return net.eval()


def _images(n: int, size: int) -> torch.Tensor:
    """Structured images in [-1, 1], NCHW."""
    return torch.from_numpy(blobs(n, size)).permute(0, 3, 1, 2).float() / 127.5 - 1


@pytest.mark.parametrize("res", [64, 128, 256])
def test_shapes_range_and_no_transposed_convs(res):
    torch.manual_seed(0)
    G, D = build_fastgan(NetArgs(resolution=res, z_dim=Z, g_width=8, d_width=8))
    x = G(torch.randn(3, Z))
    assert x.shape == (3, 3, res, res) and x.min() >= -1 and x.max() <= 1
    assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in G.modules())
    assert D(x).shape == (3,)
    logits, prediction, rec = D.real_scores_and_recon_loss(_images(3, res), part=1)
    assert logits.shape == (3,) and rec.shape == () and 0 < rec.item() < 4
    assert prediction is None  # unconditional: no condition head
    assert [(m.low, m.high) for m in G.sle] == list(SLE_PAIRS[res])


@pytest.mark.parametrize("res", [64, 256])
def test_widths_scale_the_channel_plans(res):
    """``width`` channels at R/2 in both nets (the DCGAN plan), so G's last map has width/2."""
    for w in (8, 16):
        G, D = build_fastgan(NetArgs(resolution=res, z_dim=Z, g_width=w, d_width=2 * w))
        assert G.to_rgb[0].in_channels == w // 2 and D.stem[0].out_channels == 2 * w
        assert G.up[-1][1].in_channels == w  # the R/2 map
        assert D.blocks[-1].main[0].out_channels == min(16 * w, 2 * w * res // 16)  # 8x8


def test_build_rejects_unsupported_resolution():
    for res in (32, 96, 512):
        with pytest.raises(ValueError, match="64, 128, 256"):
            build_fastgan(NetArgs(resolution=res))


def test_sle_gate_depends_on_the_low_res_map():
    torch.manual_seed(0)
    G = FastGANGenerator(64, Z, 8)
    sle = G.sle[1]
    c_low, c_high = sle.net[1].in_channels, sle.net[1].out_channels
    high = torch.randn(2, c_high, sle.high, sle.high)
    low_a, low_b = torch.randn(2, 2, c_low, sle.low, sle.low)
    gate = sle.gate(low_a)
    assert gate.shape == (2, c_high, 1, 1) and gate.min() > 0 and gate.max() < 1
    assert torch.allclose(sle(low_a, high), high * gate)
    assert (sle(low_a, high) - sle(low_b, high)).abs().max() > 1e-4


@pytest.mark.parametrize("res", [64, 256])
def test_generator_output_depends_on_the_gates(res):
    """Each SLE is live in G: it gets maps of its sides, and perturbing its low-res
    input or forcing its gates to 1 changes the image."""
    torch.manual_seed(0)
    G = _settled(FastGANGenerator(res, Z, 8), torch.randn(16, Z))
    z = torch.randn(2, Z)
    with torch.no_grad():
        base = G(z)
    for sle in G.sle:
        seen = []

        def check_sides(m, args):
            seen.append((args[0].shape[-1], args[1].shape[-1]))

        def perturb_low(m, args):
            return (args[0] + 5 * torch.randn_like(args[0]), args[1])

        def ungated(m, args, out):
            return args[1]

        hook = sle.register_forward_pre_hook(check_sides)
        with torch.no_grad():
            G(z)
        hook.remove()
        assert seen == [(sle.low, sle.high)]
        for register, fn in (
            (sle.register_forward_pre_hook, perturb_low),
            (sle.register_forward_hook, ungated),
        ):
            hook = register(fn)  # one at a time: the ungated hook would hide the other
            with torch.no_grad():
                changed = G(z)
            hook.remove()
            # Untrained gates sit near 0.5 and move little; float noise is ~1e-7.
            assert (changed - base).abs().max() > 1e-4, fn.__name__


def test_recon_targets_pick_the_matching_quadrant():
    """The part decoder reads quadrant ``part`` of the 16x16 map and is scored against the
    same quadrant of the image (0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right)."""
    torch.manual_seed(0)
    x = _images(2, 64)
    D = _settled(FastGANDiscriminator(64, 8), x)  # eval: no BN or spectral-norm updates
    f16, _ = D.features(x)
    crops = []
    D.decode_part.register_forward_pre_hook(lambda m, args: crops.append(args[0]))
    for part, (r, c) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        D.real_scores_and_recon_loss(x, part=part)
        assert torch.allclose(crops[-1], f16[:, :, 8 * r : 8 * r + 8, 8 * c : 8 * c + 8])
    # Decoders that output the exact targets for quadrant 3 score zero there only.
    D.decode_all.register_forward_hook(lambda m, a, out: F.interpolate(x, size=32, mode="area"))
    D.decode_part.register_forward_hook(lambda m, a, out: x[:, :, 32:, 32:])
    losses = [D.real_scores_and_recon_loss(x, part=p)[2].item() for p in range(4)]
    assert losses[3] < 1e-6 and min(losses[:3]) > 0.05


def test_random_part_comes_from_the_global_rng():
    x = _images(2, 64)
    D = _settled(FastGANDiscriminator(64, 8), x)
    torch.manual_seed(5)
    drawn = D.real_scores_and_recon_loss(x)[2]
    torch.manual_seed(5)
    part = int(torch.randint(4, ()))
    assert torch.equal(drawn, D.real_scores_and_recon_loss(x, part=part)[2])
    assert len({D.real_scores_and_recon_loss(x, part=p)[2].item() for p in range(4)}) == 4
    with pytest.raises(ValueError, match="0..3"):
        D.real_scores_and_recon_loss(x, part=4)


def test_recon_loss_falls_when_training_d():
    torch.manual_seed(0)
    D = FastGANDiscriminator(64, 8)
    x = _images(4, 64)
    opt = torch.optim.Adam(D.parameters(), 2e-3, betas=(0.5, 0.999))
    losses = []
    for _ in range(30):
        logits, _, rec = D.real_scores_and_recon_loss(x)
        loss = rec + F.relu(1 - logits).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(rec.item())
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5]), losses


def test_conditional_generator_and_discriminator():
    torch.manual_seed(0)
    G, D = build_fastgan(NetArgs(resolution=64, z_dim=Z, g_width=8, d_width=8, cond_dim=4))
    z = torch.randn(1, Z).expand(4, -1)
    c = torch.eye(4)
    G = _settled(G, torch.randn(16, Z), torch.eye(4).repeat(4, 1))
    with torch.no_grad():
        x = G(z, c)
    assert x.shape == (4, 3, 64, 64)
    assert (x[0] - x[1]).abs().max() > 1e-2  # rows differ only in c
    D = _settled(D, _images(16, 64), torch.eye(4).repeat(4, 1))
    with torch.no_grad():
        same = x[:1].expand(4, -1, -1, -1)
        logits = D(same, c)
        assert logits.shape == (4,) and logits.std() > 1e-3  # the projection term is live
        real_logits, _, rec = D.real_scores_and_recon_loss(same, c, part=0)
    assert torch.allclose(real_logits, logits, atol=1e-5) and torch.isfinite(rec)


def _live_cond_bn(G: FastGANGenerator) -> FastGANGenerator:
    """``G`` with random (not the initial zero) conditional-BN weights, so they matter."""
    with torch.no_grad():
        for m in G.cond_bn:
            m.linear.weight.normal_(0, 0.5)
    return G


def test_conditional_bn_starts_as_plain_bn_and_carries_the_condition():
    torch.manual_seed(0)
    plain = FastGANGenerator(64, Z, 8, cond_dim=3)
    torch.manual_seed(0)
    G = FastGANGenerator(64, Z, 8, cond_dim=3, cond_bn=True)
    # A plain model's weights (an older checkpoint) load into it; only the new part is missing.
    result = G.load_state_dict(plain.state_dict(), strict=False)
    assert not result.unexpected_keys and result.missing_keys
    assert all(k.startswith("cond_bn.") for k in result.missing_keys)
    assert len(G.cond_bn) == len(G.up) + 1  # the 4x4 BN and one per up block
    z, c = torch.randn(6, Z), torch.rand(6, 3)
    plain, G = _settled(plain, z, c), _settled(G, z, c)
    with torch.no_grad():
        assert torch.equal(G(z, c), plain(z, c))  # zero-initialised: no change at the start
        # Cut the condition's only other way in (the first layer's input): with plain BN
        # c then has no effect, with conditional BN it still moves the image.
        for net in (plain, G):
            net.project.weight[:, Z:] = 0
        _live_cond_bn(G)
        c2 = torch.rand(6, 3)
        assert torch.equal(plain(z, c), plain(z, c2))
        assert (G(z, c) - G(z, c2)).abs().max() > 1e-2


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the legacy exporter, still ours
@pytest.mark.parametrize("cond_dim,cond_bn", [(0, False), (3, False), (3, True)])
def test_onnx_export_matches_pytorch(cond_dim, cond_bn, tmp_path):
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed")
    torch.manual_seed(0)
    G = FastGANGenerator(64, Z, 8, cond_dim, cond_bn=cond_bn)
    G = _settled(_live_cond_bn(G) if cond_bn else G, torch.randn(16, Z), torch.rand(16, cond_dim))
    with torch.no_grad():  # an untrained G's image is near 0: make the 1e-4 check bite
        G.to_rgb[0].weight.mul_(10)
    args = (torch.randn(2, Z), torch.rand(2, cond_dim)) if cond_dim else (torch.randn(2, Z),)
    names = ["z", "c"][: len(args)]
    out = tmp_path / "g.onnx"
    torch.onnx.export(
        G,
        args,
        str(out),
        input_names=names,
        output_names=["image"],
        dynamic_axes={**{n: {0: "n"} for n in names}, "image": {0: "n"}},
        opset_version=17,
        dynamo=False,
    )
    feeds = {"z": torch.randn(5, Z), "c": torch.rand(5, cond_dim)}  # a batch never exported
    feeds = {k: feeds[k] for k in names}
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = sess.run(None, {k: v.numpy() for k, v in feeds.items()})[0]
    with torch.no_grad():
        want = G(*feeds.values()).numpy()
    assert want.std() > 0.1
    assert got.shape == (5, 3, 64, 64) and np.abs(got - want).max() < 1e-4
