"""``landgan train`` flags that would do nothing in the chosen configuration.

A flag the user gives that the chosen model, preset or other flags make idle (``--gp``
for an autoencoder, ``--eval-n`` while nothing is evaluated) is refused or warned about
rather than silently ignored. The rules live apart from :mod:`landgan.config`: only the
command line consults them (``TrainConfig`` itself never does), and they list every model
family's quirks, which would crowd the module that describes the fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from landgan.config import TrainConfig
from landgan.errors import UserError
from landgan.models import MODELS, get_model

# ``landgan train`` flags that every model family reads in every configuration.
USED_BY_ALL = frozenset(
    {
        "data",
        "model",
        "preset",
        "resolution",
        "out",
        "steps",
        "minutes",
        "batch_size",
        "z_dim",
        "g_width",
        "d_width",
        "lr_g",
        "optimizer",
        "sn",
        "ema_kimg",
        "seed",
        "sample_every",
        "ckpt_every",
        "log_every",
        "eval_every",
        "device",
        "channels_last",
        "resume",
        "quiet",
    }
)


def _adversarial(cfg: TrainConfig) -> bool:
    """Whether ``cfg``'s family trains against a discriminator (the autoencoders do not)."""
    return get_model(cfg.model).trainer != "ae"


@dataclass(frozen=True)
class FlagRule:
    """A ``train`` flag that does nothing in a config unless ``applies(cfg)``.

    Given anyway (with a value outside ``neutral``, the values that ask for nothing), it
    is refused, or with ``refuse=False`` (a harmless setting) warned about. ``why``
    completes the line "--FLAG does nothing ..."; it may name config fields (``{model}``).
    """

    field: str
    applies: Callable[[TrainConfig], bool]
    why: str
    refuse: bool = True
    neutral: tuple = ()


_AE = "for model {model}, an autoencoder: it has no discriminator or adversarial loss"
_EVAL = "while --eval-every is 0 (nothing is evaluated during training)"
FLAG_RULES = (
    FlagRule(
        "conditional",
        lambda c: get_model(c.model).conditional,
        "for model {model}, "
        "which has no conditional form; --conditional works with: {conditional_models}",
        neutral=(False,),
    ),
    FlagRule(
        "cond_bn",
        lambda c: c.conditional,
        "without --conditional: there is no condition to modulate G's BatchNorms",
        neutral=(False,),
    ),
    FlagRule(
        "cond_aux",
        lambda c: c.conditional,
        "without --conditional: D has no condition to predict",
        neutral=(1.0,),
    ),
    FlagRule(
        "mode_seeking",
        lambda c: c.conditional,
        "without --conditional: it keeps apart the pictures drawn under one condition",
        neutral=(0.0,),
    ),
    FlagRule(
        "stage1",
        lambda c: get_model(c.model).trainer == "stackgan",
        "for model {model}: only stackgan refines a trained stage-I generator",
        neutral=("",),
    ),
    *(
        FlagRule(name, _adversarial, _AE, neutral=neutral)
        for name, neutral in (
            ("loss", ()),
            ("lr_d", ()),
            ("d_steps", (1,)),
            ("clip", (0.0,)),
            ("gp", (0.0,)),
            ("r1", (0.0,)),
            ("balance", ("off",)),
            ("diffaug", ("",)),
        )
    ),
    FlagRule("r1_every", lambda c: c.r1 > 0, "while --r1 is 0 (off)", refuse=False),
    FlagRule(
        "amp",
        _adversarial,
        "for model {model}, an autoencoder: it trains in float32",
        refuse=False,
        neutral=("off",),
    ),
    FlagRule(
        "compile",
        _adversarial,
        "for model {model}, an autoencoder: only the GAN trainers compile their networks",
        refuse=False,
        neutral=(False,),
    ),
    *(
        FlagRule(
            name,
            lambda c: c.optimizer == "adam",
            "with --optimizer {optimizer}: it is Adam's",
            refuse=False,
        )
        for name in ("beta1", "beta2")
    ),
    FlagRule(
        "synthetic_count",
        lambda c: c.data == "synthetic",
        "with --data {data}: it counts the built-in procedural scenes",
        refuse=False,
    ),
    FlagRule("eval_n", lambda c: c.eval_every > 0, _EVAL, refuse=False),
    FlagRule("eval_metric", lambda c: c.eval_every > 0, _EVAL, refuse=False),
    FlagRule(
        "ema_rampup",
        lambda c: c.ema_kimg > 0,
        "while --ema-kimg is 0 (G_ema is G)",
        refuse=False,
        neutral=(0.0,),
    ),
    FlagRule(
        "keep",
        lambda c: c.ckpt_every > 0,
        "while --ckpt-every is 0 (only the final checkpoint is written)",
        refuse=False,
        neutral=(0,),
    ),
)


def unused_flags(cfg: TrainConfig, given: dict) -> tuple[list[str], list[str]]:
    """(refusals, warnings): one line for each flag in ``given`` (field -> the value the
    user gave) that would do nothing in ``cfg``, by :data:`FLAG_RULES`."""
    names = dict(
        cfg.to_dict(), conditional_models=", ".join(k for k, v in MODELS.items() if v.conditional)
    )
    refusals, warnings = [], []
    for rule in FLAG_RULES:
        if rule.field in given and given[rule.field] not in rule.neutral and not rule.applies(cfg):
            flag = "--" + rule.field.replace("_", "-")
            line = f"{flag} does nothing {rule.why.format(**names)}"
            (refusals if rule.refuse else warnings).append(
                line + ("; leave it out" if rule.refuse else "; it is ignored")
            )
    return refusals, warnings


def check_given_flags(cfg: TrainConfig, given: dict) -> list[str]:
    """UserError for the first flag in ``given`` that would do nothing in ``cfg`` and is
    refused; the warning lines of the others (see :func:`unused_flags`)."""
    refusals, warnings = unused_flags(cfg, given)
    if refusals:
        raise UserError(refusals[0])
    return warnings
