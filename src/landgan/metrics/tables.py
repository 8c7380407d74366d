"""Result rows -> text: a screen table and the report's Table 3 (markdown).

A result row is the dict returned by :func:`landgan.metrics.evaluate.evaluate_model`
or :func:`~landgan.metrics.evaluate.evaluate_real`: keys ``dataset``, ``model``,
``resolution`` and any of ``is_mean``/``is_std``, ``fid``, ``kid_mean``/``kid_std``,
``precision``, ``recall``, ``n_real``, ``n_fake``. Missing values print as a dash,
never as a number.
"""

from __future__ import annotations

REAL_DATA = "real data"  # the ``model`` of rows describing the real images themselves
DASH = "\u2014"
# The fields the tables format, by the kind of value each must hold (or null).
INT_FIELDS = ("resolution", "n_real", "n_fake", "kid_subsets", "kid_subset_size")
NUMBER_FIELDS = ("is_mean", "is_std", "fid", "kid_mean", "kid_std", "precision", "recall")
TEXT_FIELDS = ("dataset", "model")


def row_problem(row) -> str | None:
    """Why ``row`` cannot be shown (its first bad field and value), or None if it can.

    Rows read back from a JSON file are input like any other: a value of the wrong kind
    would otherwise fail deep inside ``format``.
    """
    if not isinstance(row, dict):
        return f"is {type(row).__name__}, not an object of fields"
    for fields, kinds, what in (
        (INT_FIELDS, int, "a whole number"),
        (NUMBER_FIELDS, (int, float), "a number"),
        (TEXT_FIELDS, str, "a string"),
    ):
        for key in fields:
            v = row.get(key)
            if v is not None and (not isinstance(v, kinds) or isinstance(v, bool)):
                shown = repr(v) if len(repr(v)) <= 40 else repr(v)[:37] + "..."
                return f"{key} must be {what} or null, got {shown}"
    return None


def _num(row: dict, key: str, fmt: str) -> str:
    v = row.get(key)
    return DASH if v is None else format(v, fmt)


def _pm(row: dict, mean: str, std: str, fmt: str) -> str:
    if row.get(mean) is None:
        return DASH
    return (
        f"{row[mean]:{fmt}} \u00b1 {row[std]:{fmt}}"
        if row.get(std) is not None
        else format(row[mean], fmt)
    )


def _cells(row: dict) -> dict[str, str]:
    return {
        "dataset": str(row.get("dataset", "")),
        "model": str(row.get("model", "")),
        "res": _num(row, "resolution", "d"),
        "n real": _num(row, "n_real", "d"),
        "n gen": _num(row, "n_fake", "d"),
        "IS": _pm(row, "is_mean", "is_std", ".2f"),
        "FID": _num(row, "fid", ".2f"),
        "KID": _pm(row, "kid_mean", "kid_std", ".4f"),
        "KID subsets": (
            f"{row['kid_subsets']} x {row['kid_subset_size']}"
            if row.get("kid_subset_size")
            else DASH
        ),
        "precision": _num(row, "precision", ".3f"),
        "recall": _num(row, "recall", ".3f"),
    }


def format_table(results: list[dict]) -> str:
    """Aligned plain-text table, one line per result, for the screen."""
    if not results:
        return "(no results)"
    rows = [_cells(r) for r in results]
    cols = list(rows[0])
    width = {c: max(len(c), *(len(r[c]) for r in rows)) for c in cols}

    def line(r: dict) -> str:  # names left-aligned, numbers right-aligned
        return "  ".join(
            r[c].ljust(width[c]) if c in ("dataset", "model") else r[c].rjust(width[c])
            for c in cols
        )

    header = line({c: c for c in cols})
    return "\n".join([header, "-" * len(header)] + [line(r) for r in rows])


def _column(row: dict, real_resolutions: set) -> str:
    if row.get("model") == REAL_DATA:
        # One "real data" column unless real data was measured at several resolutions.
        return REAL_DATA if len(real_resolutions) <= 1 else f"{REAL_DATA} @ {row.get('resolution')}"
    return f"{row.get('model', '')} @ {row.get('resolution')}"


def _cell(row: dict | None) -> str:
    if row is None:
        return DASH
    return "<br>".join(
        [
            f"IS {_pm(row, 'is_mean', 'is_std', '.2f')}",
            f"FID {_num(row, 'fid', '.2f')}",
            f"KID {_pm(row, 'kid_mean', 'kid_std', '.4f')}",
        ]
    )


def table3_markdown(results: list[dict]) -> str:
    """The report's Table 3: rows = datasets, columns = "model @ resolution" + real data.

    Each cell stacks "IS mean ± std", "FID" and "KID mean ± std" (``<br>``-separated, as
    markdown table cells cannot hold newlines). Columns keep the order of first
    appearance, the real-data column(s) last; a later row for the same cell wins.
    """
    real_res = {r.get("resolution") for r in results if r.get("model") == REAL_DATA}
    datasets, cols, cells = [], [], {}
    for r in results:
        d, c = str(r.get("dataset", "")), _column(r, real_res)
        datasets += [d] if d not in datasets else []
        cols += [c] if c not in cols else []
        cells[d, c] = r
    cols = [c for c in cols if not c.startswith(REAL_DATA)] + [
        c for c in cols if c.startswith(REAL_DATA)
    ]
    lines = ["| dataset | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    lines += [
        f"| {d} | " + " | ".join(_cell(cells.get((d, c))) for c in cols) + " |" for d in datasets
    ]
    return "\n".join(lines)
