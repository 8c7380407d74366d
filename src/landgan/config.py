"""Training configuration: one dataclass, printed at start, saved with every run.

The field defaults are the one place for defaults: ``TrainConfig()`` is exactly what
``landgan train`` with no flags runs, and each field's trailing comment is its
``--flag``'s help text (:func:`field_help`). They are the default model's (fastgan)
recipe; latent size and optimiser follow the report's Table 2 (z_dim 100, Adam lr 2e-4,
beta1 0.5), its batch does not (16, not 64: more updates per CPU-minute, which gave a
lower KID at every budget of the photo comparisons in docs/performance.md), and its
DiffAugment is FastGAN's own colour and translation, without cutout (a lower KID at every
budget, photos and procedural scenes alike). A model may change some defaults (its paper's
settings, ``ModelSpec.defaults``), then a preset (:data:`PRESETS`) may; values the
user gives explicitly always win. A flag the user gives that would do nothing in the
chosen configuration is refused or warned about (:mod:`landgan.config_flags`).
"""

from __future__ import annotations

import dataclasses
import inspect
import io
import json
import math
import tokenize
from dataclasses import dataclass
from functools import lru_cache

from landgan.augment import parse_policy
from landgan.errors import UserError
from landgan.losses import LOSSES
from landgan.models import count_parameters, get_model
from landgan.models.layout import layout_of
from landgan.models.spec import NetArgs

PRESETS = {  # --preset name -> the defaults it sets (over the model's, under the user's values)
    # landgan's recipe for quality per CPU-minute (benchmarks/time_to_quality.py): bf16 where
    # the hardware computes it natively, an EMA generator, DiffAugment against D overfitting.
    # These are the field defaults themselves, so the preset changes nothing.
    "fast": {},
    # The report's DCGAN as published: float32, no EMA (G_ema == G), no augmentation; its
    # model is dcgan4 unless --model names another.
    "report": {"model": "dcgan4", "amp": "off", "ema_kimg": 0.0, "diffaug": ""},
}


@dataclass
class TrainConfig:
    """Everything that defines a training run."""

    data: str = "synthetic"  # prepared dataset folder, or "synthetic" for built-in landscapes
    model: str = "fastgan"  # architecture (the models are listed above)
    preset: str = "fast"  # set of defaults: fast (landgan's recipe) or report (the report's DCGAN)
    loss: str = "hinge"  # objective (the model's own unless given)
    resolution: int = 64  # output size in pixels (square)
    out: str = "runs"  # parent folder of numbered run folders
    steps: int = 8000  # stop after this many generator steps in total (0 = no step limit)
    minutes: float = 0.0  # stop after this many minutes of this invocation (0 = no time limit)
    batch_size: int = 16  # images per step
    z_dim: int = 100  # latent size
    g_width: int = 32  # generator width: channels at half output size (model's own unless given)
    d_width: int = 32  # discriminator width: channels of the first layer (model's own unless given)
    lr_g: float = 2e-4  # generator learning rate
    lr_d: float = 2e-4  # discriminator learning rate
    beta1: float = 0.5  # Adam beta1
    beta2: float = 0.999  # Adam beta2
    optimizer: str = "adam"  # "adam" or "rmsprop" (WGAN with clipping)
    d_steps: int = 1  # discriminator (critic) updates per generator update
    clip: float = 0.0  # clip every discriminator weight to [-clip, clip] after each step (0 = off)
    gp: float = 0.0  # WGAN-GP gradient penalty weight on real/fake interpolates (0 = off)
    r1: float = 0.0  # R1 penalty weight (gamma) on real images (0 = off)
    r1_every: int = 4  # apply R1 every N discriminator steps, scaled by N (lazy regularisation)
    sn: bool = False  # spectral normalisation in the discriminator (its BatchNorm is removed)
    diffaug: str = "color,translation"  # DiffAugment policy: color, translation, cutout ("" = off)
    conditional: bool = False  # condition G and D on class / composition vectors from the data
    conditions: str = ""  # comma-separated condition names (set from the data when conditional)
    cond_bn: bool = False  # condition modulates G's BatchNorms; a layout map, where it lies
    mode_seeking: float = 0.0  # weight pushing G to vary pictures with z per condition (0 = off)
    cond_aux: float = 1.0  # weight of D's condition prediction (AC-GAN style; 0 = projection alone)
    stage1: str = ""  # stackgan: trained stage-I (64 px) checkpoint that stage II refines
    balance: str = "off"  # "off" or "adaptive": correct a D or G that has pulled far ahead
    ema_kimg: float = 10.0  # half-life of the generator's EMA copy, in thousands of images
    ema_rampup: float = 0.05  # EMA half-life is at most this fraction of images seen (0 = off)
    seed: int = 0  # seeds weights, batches and latents
    synthetic_count: int = 8192  # how many procedural landscapes to render for data=synthetic
    sample_every: int = 500  # save a sample grid every N steps (0 = only at the end)
    ckpt_every: int = 2000  # save a checkpoint every N steps (0 = only at the end)
    keep: int = 0  # keep only the newest N step checkpoints (0 = keep all; best.pt always kept)
    log_every: int = 20  # log losses to TensorBoard every N steps
    eval_every: int = 0  # score G_ema (KID/FID vs the training data) every N steps (0 = off)
    eval_n: int = 500  # generated images per evaluation during training
    eval_metric: str = "kid"  # "kid" or "fid": what metrics.jsonl tracks and best.pt keeps
    device: str = "auto"  # "auto", "cpu", "cuda" or "cuda:N"
    amp: str = "native"  # auto (bf16 on CUDA), native (also CPUs with native bf16), bf16, fp16, off
    channels_last: bool = True  # NHWC memory layout for convolutions (faster on CPU and GPU)
    compile: bool = False  # torch.compile the G and D forward passes (slow start, faster steps)

    @property
    def condition_names(self) -> list[str]:
        """The names of the condition vector's entries ([] for an unconditional run)."""
        return self.conditions.split(",") if self.conditional and self.conditions else []

    def net_args(self, **extra) -> NetArgs:
        """The plain arguments a model builder takes (``extra``: e.g. StackGAN's stage I)."""
        layout = layout_of(self.condition_names)
        return NetArgs(
            self.resolution,
            self.z_dim,
            self.g_width,
            self.d_width,
            len(self.condition_names),
            cond_head=self.cond_aux > 0,
            cond_bn=self.cond_bn,
            layout_elements=len(layout[0]) if layout else 0,
            **extra,
        )

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def for_model(cls, **given) -> "TrainConfig":
        """A config for ``given["model"]``: the model paper's defaults, the preset's, then ``given``."""
        preset = given.get("preset", cls.preset)
        if preset and preset not in PRESETS:
            raise UserError(f"unknown preset {preset!r}; choose one of: {', '.join(PRESETS)}")
        chosen = dict(PRESETS.get(preset, {}))
        model = given.get("model", chosen.pop("model", cls.model))
        chosen.pop("model", None)
        return cls(**{**get_model(model).defaults, **chosen, **given, "model": model})

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """Build a config from a dict, validating names and types (e.g. from a checkpoint)."""
        if not isinstance(d, dict):
            raise UserError(f"a config must be a JSON object of fields, got {type(d).__name__}")
        names = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(str(k)[:80] for k in set(d) - set(names))
        if unknown:
            raise UserError(f"unknown config field(s): {', '.join(unknown)}")
        # Checkpoints from before cond_aux had no condition head in D.
        kw = {} if "cond_aux" in d else {"cond_aux": 0.0}
        for k, v in d.items():
            typ = type(getattr(cls, k))
            if typ is float and isinstance(v, int) and not isinstance(v, bool):
                v = float(v)
            if not isinstance(v, typ) or isinstance(v, bool) != (typ is bool):
                raise UserError(f"config field {k} must be {typ.__name__}, got {v!r}")
            kw[k] = v
        return cls(**kw).validated()

    def validated(self) -> "TrainConfig":
        """Check values that would otherwise fail deep inside training."""
        get_model(self.model)
        if self.loss not in LOSSES:
            raise UserError(f"unknown loss {self.loss!r}; choose one of: {', '.join(LOSSES)}")
        check_ranges(self)
        check_size(self)
        if self.amp not in ("auto", "native", "bf16", "fp16", "off"):
            raise UserError(f"unknown --amp {self.amp!r}; choose auto, native, bf16, fp16 or off")
        if self.preset and self.preset not in PRESETS:
            raise UserError(f"unknown preset {self.preset!r}; choose one of: {', '.join(PRESETS)}")
        if self.optimizer not in ("adam", "rmsprop"):
            raise UserError(f"unknown optimizer {self.optimizer!r}; choose adam or rmsprop")
        if self.eval_metric not in ("kid", "fid"):
            raise UserError(f"unknown --eval-metric {self.eval_metric!r}; choose kid or fid")
        if self.balance not in ("off", "adaptive"):
            raise UserError(f"unknown --balance {self.balance!r}; choose off or adaptive")
        if self.diffaug:
            parse_policy(self.diffaug)
        if self.cond_bn and not get_model(self.model).cond_bn:
            raise UserError(f"--cond-bn: model {self.model} has no conditional BatchNorm")
        if self.steps == 0 and self.minutes == 0:
            raise UserError("give a budget: --steps N and/or --minutes M")
        return self


# Field -> (lowest, highest) accepted, inclusive (None: no bound). Every number must also be
# finite. Upper bounds stop absurd sizes (z_dim 10**12) before anything is allocated, and
# keep seeds inside what torch's generators take after landgan's small offsets.
RANGES = {
    "resolution": (1, 4096),
    "batch_size": (1, 65536),
    "z_dim": (1, 65536),
    "g_width": (1, 8192),
    "d_width": (1, 8192),
    "synthetic_count": (1, 10_000_000),
    "steps": (0, None),
    "minutes": (0, 1e7),
    "sample_every": (0, None),
    "ckpt_every": (0, None),
    "keep": (0, None),
    "log_every": (1, None),
    "eval_every": (0, None),
    "eval_n": (2, 1_000_000),
    "d_steps": (1, 1000),
    "r1_every": (1, None),
    "clip": (0, None),
    "gp": (0, None),
    "r1": (0, None),
    "beta1": (0, 0.99999),
    "beta2": (0, 0.99999999),
    "ema_kimg": (0, None),
    "ema_rampup": (0, 1),
    "seed": (0, 2**31 - 1),
    "cond_aux": (0, None),
    "mode_seeking": (0, None),
}
POSITIVE = ("lr_g", "lr_d")  # must be > 0 (and finite)


def check_ranges(cfg: TrainConfig) -> None:
    """One clear UserError for the first number that is non-finite or out of range."""
    for name, (lo, hi) in RANGES.items():
        v = getattr(cfg, name)
        if not math.isfinite(v) or v < lo or (hi is not None and v > hi):
            span = f"between {lo} and {hi}" if hi is not None else f">= {lo}"
            raise UserError(f"--{name.replace('_', '-')} must be {span}, got {v!r}")
    for name in POSITIVE:
        v = getattr(cfg, name)
        if not math.isfinite(v) or v <= 0:
            raise UserError(f"--{name.replace('_', '-')} must be a finite number > 0, got {v!r}")


# At most this many weights in G and D together (8 GB as float32, before optimiser state):
# far above every model's recipe (stackgan at 256 px and width 256: 1.25e9), far below
# what a forged checkpoint or a typo (--g-width 8192) would make PyTorch try to allocate.
MAX_PARAMETERS = 2_000_000_000
# Sizes up to these are known to stay under MAX_PARAMETERS for every model at every
# resolution it supports (tests/test_hostile_io.py checks the corners), so they skip
# the count, which takes seconds for a spectral-norm discriminator.
USUAL_SIZES = {"z_dim": 1024, "g_width": 256, "d_width": 256, "cond_dim": 512}


def check_size(cfg: TrainConfig) -> None:
    """UserError unless ``cfg``'s model supports its resolution and its networks stay
    within :data:`MAX_PARAMETERS` weights.

    Runs before any network or array is built, so a checkpoint whose config claims
    absurd sizes is refused without allocating anything.
    """
    spec = get_model(cfg.model)
    if cfg.resolution not in spec.resolutions:
        raise UserError(
            f"model {cfg.model} does not support {cfg.resolution} px; it supports: "
            f"{', '.join(map(str, spec.resolutions))}"
        )
    args = cfg.net_args()
    sizes = {
        "z_dim": args.z_dim,
        "g_width": args.g_width,
        "d_width": args.d_width,
        "cond_dim": args.cond_dim,
    }
    if all(sizes[k] <= limit for k, limit in USUAL_SIZES.items()):
        return
    n = count_parameters(cfg.model, args)
    if n > MAX_PARAMETERS:
        raise UserError(
            f"{cfg.model} at {cfg.resolution} px with z_dim {cfg.z_dim}, g_width "
            f"{cfg.g_width}, d_width {cfg.d_width} and {args.cond_dim} conditions "
            f"would have {n:.3g} weights, over the limit of {MAX_PARAMETERS:.3g}; "
            "use smaller sizes"
        )


@lru_cache(maxsize=None)
def field_help(cls=TrainConfig) -> dict[str, str]:
    """Each field's trailing ``# comment`` in the class source: the one description of it."""
    source = inspect.getsource(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    names_by_line, helps = {}, {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        line = tok.start[0]
        if tok.type == tokenize.NAME and line not in names_by_line and tok.string in fields:
            names_by_line[line] = tok.string
        elif tok.type == tokenize.COMMENT and line in names_by_line:
            helps[names_by_line[line]] = tok.string.lstrip("# ").strip()
    return helps
