"""Quality checks during training (``--eval-every``): KID/FID logged, best kept.

GAN quality often peaks well before the last step, so the loop keeps a copy of the
checkpoint with the best score as ``checkpoints/best.pt``.

With several processes the work is shared: each generates its slice of the
``eval_n`` images (the latents are the same for any process count) and extracts
their features; rank 0 gathers the features, holds the real ones, scores, writes
``metrics.jsonl``, and tells the others whether the score is a new best.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from landgan.data.dataset import condition_matrix
from landgan.images import to_uint8
from landgan.metrics.evaluate import score_features
from landgan.metrics.inception import load_feature_extractor
from landgan.metrics.sources import image_source_features
from landgan.composer import draw_conditions, stored_conditions
from landgan.train.distributed import Distributed

METRIC_KEYS = {"kid": "kid_mean", "fid": "fid"}  # --eval-metric -> score_features key


class TrainingEvaluator:
    """Scores G_ema against the training data's features (computed once, cached on disk)."""

    def __init__(self, cfg, data, device: torch.device, dist=None):
        self.cfg, self.device, self.dist = cfg, device, dist or Distributed()
        self.extractor = load_feature_extractor(device)
        self.real = None
        if self.dist.is_main:  # only the scorer needs them, and only it may write the cache
            n_real = min(len(data), max(cfg.eval_n, 2000))
            self.real, _ = image_source_features(data.images, self.extractor, n_real, seed=cfg.seed)
        self.conds = None
        if cfg.conditional:  # the conditions `landgan evaluate` draws from the checkpoint
            conds = torch.from_numpy(condition_matrix(data)[0])
            bank = stored_conditions(conds, cfg.condition_names)
            self.conds = draw_conditions(bank, cfg.eval_n, cfg.seed + 4)
        self.best = float("inf")
        self.best_step = -1

    @torch.no_grad()
    def fake_images(self, trainer, part: slice | None = None) -> np.ndarray:
        """Images ``part`` (default all) of ``eval_n`` from G_ema, on latents fixed for the
        whole run (a fair comparison between evaluations)."""
        g = torch.Generator().manual_seed(self.cfg.seed + 3)
        n = self.cfg.eval_n
        z = torch.cat(
            [torch.randn(min(64, n - s), self.cfg.z_dim, generator=g) for s in range(0, n, 64)]
        )
        idx = range(n)[part or slice(None)]
        out = [np.zeros((0, self.cfg.resolution, self.cfg.resolution, 3), np.uint8)]
        for s in range(idx.start, idx.stop, 64):
            e = min(s + 64, idx.stop)
            c = None if self.conds is None else self.conds[s:e]
            out.append(to_uint8(trainer.generate(z[s:e], c=c)))
        return np.concatenate(out)

    def fake_features(self, trainer) -> np.ndarray | None:
        """Features of all ``eval_n`` fakes on rank 0 (None elsewhere); each process
        generates and extracts its own share."""
        part = self.dist.share(self.cfg.eval_n)
        mine = self.extractor.features(self.fake_images(trainer, part))
        if self.dist.world == 1:
            return mine
        feats = self.dist.gather_uneven(torch.from_numpy(mine), self.cfg.eval_n)
        return feats.numpy() if self.dist.is_main else None

    def __call__(self, trainer, run_dir: Path, writer) -> tuple[dict, bool]:
        """Score now; log to TensorBoard and metrics.jsonl; return (scores, is_new_best).

        Every process must call it; all get ``is_new_best``, only rank 0 the scores.
        """
        t0 = time.perf_counter()
        fake = self.fake_features(trainer)
        scores, improved = {}, False
        if self.dist.is_main:
            scores, improved = self._score(fake, trainer, run_dir, writer, t0)
        return scores, self.dist.broadcast(improved)

    def _score(
        self, fake: np.ndarray, trainer, run_dir: Path, writer, t0: float
    ) -> tuple[dict, bool]:
        """Scores against the real features, logged; and whether they are the best yet."""
        metrics = ("kid",) if self.cfg.eval_metric == "kid" else ("kid", "fid")
        scores = score_features(self.real, fake, metrics, seed=self.cfg.seed)
        value = float(scores[METRIC_KEYS[self.cfg.eval_metric]])
        improved = value < self.best
        if improved:
            self.best, self.best_step = value, trainer.step
        record = {
            "step": trainer.step,
            "kimg": trainer.nimg / 1000,
            **scores,
            "seconds": round(time.perf_counter() - t0, 1),
            "best": improved,
        }
        for k in ("kid_mean", "fid"):
            if k in scores:
                writer.add_scalar(f"metrics/{k}", scores[k], trainer.step)
        with open(run_dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record, default=float) + "\n")
        return scores, improved

    def state_dict(self) -> dict:
        return {"best": self.best, "best_step": self.best_step}

    def load_state_dict(self, d: dict) -> None:
        self.best, self.best_step = float(d.get("best", float("inf"))), int(d.get("best_step", -1))
