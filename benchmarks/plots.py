"""Plots for the benchmarks, drawn with matplotlib (the optional ``bench`` extra).

Kept apart from the scripts so that a benchmark run without ``--plot`` needs no plotting
library, and one asked for a plot fails at once, before any training, if it is missing.
"""

from __future__ import annotations

from pathlib import Path

INSTALL_HINT = "plots need matplotlib: pip install -e '.[bench]'"


def require_matplotlib() -> None:
    """Raises ``SystemExit`` with the install line if matplotlib cannot be imported."""
    try:
        import matplotlib  # noqa: F401  (optional: the bench extra)
    except ImportError:
        raise SystemExit(INSTALL_HINT) from None


def kid_plot(
    rows: list[dict], path: Path, title: str = "KID against held-out images, per training recipe"
) -> None:
    """KID×1000 against training CPU-minutes, one line per recipe, with its ± as error bars.

    ``rows``: dicts with ``recipe``, ``cpu_min``, ``kid`` and ``kid_std`` (KID as a
    fraction, as ``time_to_quality.py --json`` writes them).
    """
    require_matplotlib()
    import matplotlib  # optional dependency (the bench extra), loaded only for a plot

    matplotlib.use("Agg")  # files only: no display on a CI runner or a server
    import matplotlib.pyplot as plt  # after the backend is chosen

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    for recipe in dict.fromkeys(r["recipe"] for r in rows):
        mine = sorted((r for r in rows if r["recipe"] == recipe), key=lambda r: r["cpu_min"])
        ax.errorbar(
            [r["cpu_min"] for r in mine],
            [r["kid"] * 1000 for r in mine],
            yerr=[r["kid_std"] * 1000 for r in mine],
            marker="o",
            capsize=3,
            label=recipe,
        )
    ax.set_xlabel("CPU-minutes of training")
    ax.set_ylabel("KID×1000 (lower is better)")
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
