"""The app's event handlers: validate what the browser sent, call the engine, shape the outputs.

Apart from :mod:`landgan.ui.app`, which lays the page out and launches it, because the
handlers are plain methods that tests and benchmarks call without a page or a server.
Gradio is imported inside them, when an event runs: by then :func:`landgan.ui.app.offline_env`
has switched its analytics off.
"""

from __future__ import annotations

from landgan.errors import UserError
from landgan.ui.engine import READ_AT_MOST, Engine, reading_table
from landgan.ui.tabs import COMPOSITIONS, MAX_SLIDERS, SEEDS
from landgan.ui.validate import (
    rebalance,
    validate_best_of,
    validate_composition,
    validate_count,
    validate_frames,
    validate_seed,
    validate_spec,
    validate_truncation,
)


class Handlers:
    """The app's event handlers: validate the inputs, call the engine, shape the outputs."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def names(self, ckpt) -> list[str]:
        """The checkpoint's condition names (loading it if need be); [] when unconditional."""
        names = self.engine.model(ckpt).names
        if len(names) > MAX_SLIDERS:
            raise UserError(
                f"this model has {len(names)} conditions; the UI shows at most "
                f"{MAX_SLIDERS} (use landgan generate --mix)"
            )
        return names

    def describe(self, ckpt) -> dict:
        """What the page shows for a checkpoint: summary, slider names/values, GIF defaults."""
        names, m = self.names(ckpt), self.engine.model(ckpt)
        cond = f"conditioned on {', '.join(names)} (%)" if names else "unconditional: no sliders"
        if m.grid:
            cond += f"; a {m.grid}x{m.grid} layout model: paint where each goes in the Paint tab"
        a, b = m.extremes() if names else ("", "")
        return {
            "info": f"**{m.cfg.model}**, {m.cfg.resolution} px, step {m.step}; {cond}",
            "names": names,
            "start": m.typical(),
            "a": a,
            "b": b,
            "composes": self.engine.composes(ckpt),
        }

    def checkpoint(self, ckpt):
        """Updates for the page when another checkpoint is chosen."""
        import gradio as gr

        d = self.describe(ckpt)
        names, start, on = d["names"], d["start"], bool(d["names"])
        sliders = [
            gr.update(
                visible=i < len(names),
                label=names[i] if i < len(names) else "",
                value=start[i] if i < len(names) else 0,
            )
            for i in range(MAX_SLIDERS)
        ]
        return [
            d["info"],
            *sliders,
            gr.update(visible=d["composes"]),
            gr.update(visible=on, value=SEEDS),
            gr.update(value=d["a"], visible=on),
            gr.update(value=d["b"], visible=on),
        ]

    def refresh(self, current):
        """Rescan the runs folder; keep the current choice when it still exists."""
        import gradio as gr

        names, notice = self.choices()
        return [
            gr.update(
                choices=self.labelled(names),
                value=current if current in names else (names[0] if names else None),
            ),
            gr.update(value=notice, visible=bool(notice)),
        ]

    def choices(self) -> tuple[list[str], str]:
        """Models to offer (shipped first, then the runs folder's checkpoints, newest first),
        and a note on those that failed to load ("" if none)."""
        names = [*self.engine.shipped, *self.engine.checkpoints()]
        bad = self.engine.unavailable(names)
        notice = "; ".join(f"{n}: {why}".replace("`", "'") for n, why in bad.items())
        return [n for n in names if n not in bad], notice and f"**Unavailable**: {notice}"

    def labelled(self, names: list[str]) -> list:
        """Dropdown choices for ``names``: a shipped model as ("NAME (shipped)", NAME), so it
        is not mistaken for a run of that name; checkpoints as they are."""
        return [(f"{n} (shipped)", n) if n in self.engine.shipped else n for n in names]

    def first_usable(self) -> tuple[str, dict]:
        """The first shipped model, else the newest checkpoint, that the page can show, with
        :meth:`describe`'s dict for it.

        Models that fail on the way are remembered as unavailable (see
        :meth:`Engine.unavailable`); if none works, a UserError lists why.
        """
        names, why = [*self.engine.shipped, *self.engine.checkpoints()], {}
        for name in names:
            try:
                return name, self.describe(name)
            except UserError as e:
                why[name] = str(e)
        listed = "; ".join(list(why.values())[:3]) + ("; ..." if len(why) > 3 else "")
        where = f"checkpoints under {self.engine.runs_root}"
        where = f"models (shipped, or {where})" if self.engine.shipped else where
        raise UserError(f"none of the {len(names)} {where} can be loaded: {listed}")

    def rebalance(self, moved: int, ckpt, *values):
        """After slider ``moved`` was released: the others rescale so all sum to 100."""
        import gradio as gr

        k = len(self.names(ckpt))
        if moved >= k:
            return [gr.update() for _ in range(MAX_SLIDERS)]
        new = rebalance(values[:k], moved)
        return new + [gr.update() for _ in range(MAX_SLIDERS - k)]

    def condition(self, ckpt, values):
        """Slider values -> the validated condition vector, or None for an unconditional model."""
        names = self.names(ckpt)
        return validate_composition(values[: len(names)], names) if names else None

    def generate(self, ckpt, seed, truncation, n, best_of, *values):
        """The Generate button: (image, caption) pairs for the gallery, and for a composition
        model the table of asked vs read fractions (else "")."""
        import gradio as gr

        seed, truncation = validate_seed(seed), validate_truncation(truncation)
        n, cond = validate_count(n), self.condition(ckpt, values)
        best_of = validate_best_of(best_of) if self.engine.composes(ckpt) else 1
        images, warning = self.engine.generate(ckpt, n, seed, truncation, cond, best_of)
        if warning:
            gr.Warning(warning.removeprefix("warning: "))
        names = self.names(ckpt)
        # Recorded in each PNG as `landgan generate` options, so any image can be remade.
        spec = ",".join(f"{k}={float(v)!r}" for k, v in zip(names, values)) or None
        about = {
            "checkpoint": ckpt,
            "seed": seed,
            "n": n,
            "truncation": truncation,
            "composition": spec,
            "best_of": best_of,
        }
        paths = self.engine.write_pngs(images, about)
        read = self.engine.read(ckpt, images)
        table = (
            ""
            if read is None
            else reading_table(names, cond.tolist(), read, min(n, READ_AT_MOST), best_of)
        )
        return [(str(p), f"seed {seed}, image {i + 1}") for i, p in enumerate(paths)], table

    def interpolate(self, ckpt, mode, seed_a, seed_b, spec_a, spec_b, frames, truncation, *values):
        """The Make GIF button: the GIF's path twice (shown, and offered as a download)."""
        seeds = (validate_seed(seed_a), validate_seed(seed_b))
        frames, truncation = validate_frames(frames), validate_truncation(truncation)
        names = self.names(ckpt)
        if mode not in (SEEDS, COMPOSITIONS):
            raise UserError(f"interpolate {SEEDS!r} or {COMPOSITIONS!r}, not {str(mode)[:40]!r}")
        conds = (None, None)
        if mode == COMPOSITIONS:
            if not names:
                raise UserError("this checkpoint is unconditional: interpolate between seeds")
            conds, seeds = (
                (validate_spec(spec_a, names), validate_spec(spec_b, names)),
                seeds[:1] * 2,
            )
        elif names:
            conds = (self.condition(ckpt, values),) * 2
        path = self.engine.write_gif(
            self.engine.interpolate(ckpt, seeds, conds, frames, truncation)
        )
        return str(path), str(path)
