"""Quality checks during training (``--eval-every``): KID/FID logged, best kept.

GAN quality often peaks well before the last step, so the loop keeps a copy of the
checkpoint with the best score as ``checkpoints/best.pt``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from landgan.images import to_uint8

METRIC_KEYS = {"kid": "kid_mean", "fid": "fid"}  # --eval-metric -> score_features key


class TrainingEvaluator:
    """Scores G_ema against the training data's features (computed once, cached on disk)."""

    def __init__(self, cfg, data, device: torch.device):
        from landgan.metrics.inception import load_feature_extractor
        from landgan.metrics.sources import image_source_features

        self.cfg, self.device = cfg, device
        self.extractor = load_feature_extractor(device)
        n_real = min(len(data), max(cfg.eval_n, 2000))
        self.real, _ = image_source_features(data.images, self.extractor, n_real,
                                             seed=cfg.seed)
        self.conds = None
        if cfg.conditional:  # generated images get conditions spread over the data
            from landgan.train.data import condition_matrix

            conds = torch.from_numpy(condition_matrix(data)[0])
            self.conds = conds[torch.linspace(0, len(conds) - 1, cfg.eval_n).long()]
        self.best = float("inf")
        self.best_step = -1

    @torch.no_grad()
    def fake_images(self, trainer) -> np.ndarray:
        """``eval_n`` images from G_ema on latents fixed for the whole run (fair comparison)."""
        g = torch.Generator().manual_seed(self.cfg.seed + 3)
        out = []
        for s in range(0, self.cfg.eval_n, 64):
            z = torch.randn(min(64, self.cfg.eval_n - s), self.cfg.z_dim, generator=g)
            c = None if self.conds is None else self.conds[s:s + len(z)]
            out.append(to_uint8(trainer.generate(z, c=c)))
        return np.concatenate(out)

    def __call__(self, trainer, run_dir: Path, writer) -> tuple[dict, bool]:
        """Score now; log to TensorBoard and metrics.jsonl; return (scores, is_new_best)."""
        from landgan.metrics.evaluate import score_features

        t0 = time.perf_counter()
        fake = self.extractor.features(self.fake_images(trainer))
        metrics = ("kid",) if self.cfg.eval_metric == "kid" else ("kid", "fid")
        scores = score_features(self.real, fake, metrics, seed=self.cfg.seed)
        value = float(scores[METRIC_KEYS[self.cfg.eval_metric]])
        improved = value < self.best
        if improved:
            self.best, self.best_step = value, trainer.step
        record = {"step": trainer.step, "kimg": trainer.nimg / 1000, **scores,
                  "seconds": round(time.perf_counter() - t0, 1), "best": improved}
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
