"""Model registry: the names ``landgan train --model`` accepts.

Each :class:`ModelSpec` says how to build the networks from plain arguments
(:class:`NetArgs`), which resolutions the architecture supports, the trainer that
fits it, and the objective and optimiser settings the original paper used (applied
unless the user overrides them). Models are pure: no file I/O, no training config.
A new family is one model file and one entry in :data:`MODELS`.
"""

from __future__ import annotations

import torch
from torch import nn

from landgan.errors import UserError
from landgan.models import autoencoder, dcgan, fastgan, mlp, stackgan
from landgan.models.spec import ModelSpec, NetArgs  # noqa: F401 -- NetArgs: public API


# The report's families keep their own recipe under landgan's default preset: the
# DCGAN objective and widths (report Table 2) and colour/translation DiffAugment.
# fastgan's batch of 16 (four times the updates per image: a lower KID at every budget of
# the photo comparisons, docs/performance.md) is not theirs: they keep the report's 64 and 2,000 steps.
DCGAN_RECIPE = dict(
    loss="bce", g_width=64, d_width=64, diffaug="color,translation", batch_size=64, steps=2000
)

MODELS: dict[str, ModelSpec] = {
    # TrainConfig's field defaults are this model's recipe (it is the default model), so
    # it needs no defaults of its own; see models/fastgan.py for the widths.
    "fastgan": ModelSpec(
        fastgan.build_fastgan,
        fastgan.RESOLUTIONS,
        "FastGAN (Liu 2021): skip-layer excitation G, self-supervised D; for "
        "small datasets at 64/128/256 px (the default)",
        trainer="fastgan",
        conditional=True,
        cond_bn=True,
    ),
    "dcgan4": ModelSpec(
        dcgan.build_dcgan4,
        (32, 64),
        "DCGAN, 4 transposed convs (Radford 2016), the report's final model",
        defaults=DCGAN_RECIPE,
        conditional=True,
    ),
    "dcgan5": ModelSpec(
        dcgan.build_dcgan5,
        (64, 128, 256),
        "DCGAN, 5 transposed convs, for 64/128/256 px",
        defaults=DCGAN_RECIPE,
        conditional=True,
    ),
    "autoencoder": ModelSpec(
        autoencoder.build_autoencoder,
        (32, 64, 128),
        "convolutional autoencoder (non-adversarial baseline); samples a "
        "Gaussian fitted to its codes",
        defaults={**DCGAN_RECIPE, "lr_g": 1e-3, "beta1": 0.9},
        trainer="ae",
    ),
    "vae": ModelSpec(
        autoencoder.build_vae,
        (32, 64, 128),
        "variational autoencoder (Kingma & Welling 2014), non-adversarial baseline",
        defaults={**DCGAN_RECIPE, "lr_g": 1e-3, "beta1": 0.9},
        trainer="ae",
    ),
    "mlp-gan": ModelSpec(
        mlp.build_mlp_gan,
        (32, 64),
        "vanilla GAN, fully connected G and D (Goodfellow 2014)",
        defaults=DCGAN_RECIPE,
    ),
    "wgan": ModelSpec(
        dcgan.build_wgan,
        (32, 64, 128, 256),
        "the report's WGAN: weight clipping, RMSprop, 5 critic steps (Arjovsky 2017)",
        defaults=dict(
            DCGAN_RECIPE,
            loss="wasserstein",
            optimizer="rmsprop",
            lr_g=5e-5,
            lr_d=5e-5,
            clip=0.01,
            d_steps=5,
        ),
        conditional=True,
    ),
    "wgan-gp": ModelSpec(
        dcgan.build_wgan_gp,
        (32, 64, 128, 256),
        "WGAN with gradient penalty, no BN in the critic (Gulrajani 2017)",
        defaults=dict(
            DCGAN_RECIPE,
            loss="wasserstein",
            gp=10.0,
            lr_g=1e-4,
            lr_d=1e-4,
            beta1=0.0,
            beta2=0.9,
            d_steps=5,
        ),
        conditional=True,
    ),
    "stackgan": ModelSpec(
        stackgan.build_stackgan,
        stackgan.RESOLUTIONS,
        "StackGAN stage II (Zhang 2017): refines a trained 64 px generator "
        "(--stage1 CKPT) to 128/256 px",
        defaults=dict(DCGAN_RECIPE, g_width=32),
        trainer="stackgan",
    ),
}


def get_model(name: str) -> ModelSpec:
    """Look a model up by name, with a clear error listing the valid names."""
    try:
        return MODELS[name]
    except KeyError:
        raise UserError(f"unknown model {name!r}; choose one of: {', '.join(MODELS)}") from None


def build_models(model: str, args: NetArgs, sn: bool = False) -> tuple[nn.Module, nn.Module]:
    """Build (G, D) of family ``model``, checking that it supports ``args``.

    ``sn`` puts spectral normalisation on D (see :func:`spectral_normed`).
    """
    spec = get_model(model)
    if args.resolution not in spec.resolutions:
        sizes = ", ".join(map(str, spec.resolutions))
        raise UserError(
            f"model {model} does not support {args.resolution} px; it supports: {sizes}"
        )
    if args.cond_dim and not spec.conditional:
        able = ", ".join(k for k, v in MODELS.items() if v.conditional)
        raise UserError(f"model {model} has no conditional form; --conditional works with: {able}")
    g, d = spec.build(args)
    return g, spectral_normed(d) if sn else d


def count_parameters(model: str, args: NetArgs) -> int:
    """Weights of (G, D) of family ``model`` at ``args``, counted without allocating them.

    The networks are built on PyTorch's meta device (shapes only, no storage), so an
    absurd size costs nothing to measure. Building a discriminator with spectral norm
    this way takes seconds (its power iteration runs op by op in Python), so callers
    use it for unusual sizes only; see :func:`landgan.config.check_size`.
    """
    with torch.device("meta"):
        g, d = build_models(model, args)
    return sum(p.numel() for net in (g, d) for p in net.parameters())


def spectral_normed(net: nn.Module) -> nn.Module:
    """Spectral normalisation (Miyato 2018) on every conv/linear weight of ``net``.

    BatchNorm layers are removed: SN already bounds the critic's Lipschitz constant,
    and batch statistics would couple the samples it is meant to judge one by one.
    """
    for name, child in list(net.named_children()):
        if isinstance(child, nn.BatchNorm2d):
            setattr(net, name, nn.Identity())
        elif isinstance(child, (nn.Conv2d, nn.Linear)):
            setattr(net, name, nn.utils.parametrizations.spectral_norm(child))
        else:
            spectral_normed(child)
    return net
