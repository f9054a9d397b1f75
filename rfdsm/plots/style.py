"""How the figures look: colours, line styles, labels, tick labels, and writing the files.

Nothing here imports ``matplotlib.pyplot`` (nor seaborn, which does): figures are built from
:class:`matplotlib.figure.Figure` directly, so drawing needs no display backend and leaves the
user's pyplot state alone.  No rcParams are set for the same reason; every style is passed to
the call that draws.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..core.params import PARAMS, param

__all__ = ["FORMATS", "save_figure", "palette", "m_colours", "BAYES_STYLE", "DIAG_STYLE",
           "ERROR_COLOURS", "TEX", "AXIS_LABEL", "ERROR_LABEL", "fmt_value", "param_text",
           "m_label", "plain_log_ticks"]

FORMATS = ("png", "pdf")

#: The Bayes level a^2 = exp(-2t), the smallest possible test error.
BAYES_STYLE = dict(color="0.35", ls=":", lw=1.3)
#: The interpolation line psi_p = psi_n.
DIAG_STYLE = dict(color="0.55", ls=(0, (5, 3)), lw=1.0)
#: One colour per error where the errors share a panel's colour key (m dependence).
ERROR_COLOURS = {"train": "C1", "test": "C0", "score": "C2"}

TEX = {row.name: row.symbol for row in PARAMS if row.symbol}
#: Axis labels of the setting parameters: those of the parameter table (rfdsm/params.py).
AXIS_LABEL = {row.name: row.label for row in PARAMS}
ERROR_LABEL = {"train": r"train error $\mathcal{L}_\mathrm{train}(\hat A)$",
               "test": r"test error $\mathcal{L}_\mathrm{test}(\hat A)$",
               "score": r"score error $\frac{1}{d}\mathbb{E}\|s_{\hat A}-s^*\|^2$"}


def save_figure(fig, stem, formats=("png",), dpi=110) -> list[Path]:
    """Write ``fig`` to ``stem.<fmt>`` for each format in ``formats`` (``png``, ``pdf``)."""
    formats = [f.strip().lower() for f in ((formats,) if isinstance(formats, str) else formats)]
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise ValueError(f"formats must be a non-empty subset of {list(FORMATS)}, got {formats!r}")
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for f in formats:
        path = stem.with_name(f"{stem.name}.{f}")
        fig.savefig(path, dpi=dpi)
        paths.append(path)
    return paths


def palette(values, name) -> dict:
    """One colour per sorted distinct value, from seaborn's evenly spaced, perceptually uniform
    sampling of colormap ``name`` (its ends left out: near-white or near-black reads badly on
    white)."""
    import seaborn  # here: only drawing needs it, and it imports pyplot

    values = sorted(set(values))
    colours = seaborn.color_palette(name, len(values))
    return dict(zip(values, (tuple(float(c) for c in rgb) for rgb in colours)))


def m_colours(ms) -> dict:
    """One colour per value of ``m`` (``inf`` last), the same in every figure of a table."""
    return palette((float(m) for m in ms), "plasma")


def fmt_value(name, v) -> str:
    """A parameter value for TeX: integers without a point, ``inf`` as ``\\infty``."""
    if param(name).kind == "object":
        return str(v)
    v = float(v)
    if math.isinf(v):
        return r"\infty"
    return str(int(v)) if v == int(v) and abs(v) < 1e6 else f"{v:g}"


def param_text(name, v) -> str:
    if name == "activation":
        return rf"$\sigma$ = {v}"
    if name not in TEX:  # an object such as the estimator or the data model: its name
        return f"{name} = {v}"
    return f"${TEX[name]} = {fmt_value(name, v)}$"


def m_label(m) -> str:
    return f"$m = {fmt_value('m', m)}$"


def plain_log_ticks(axis):
    """Label a log axis with plain numbers (0.5, 2, 30) instead of 5x10^-1 and 3x10^1.

    Minor ticks get labels only when the axis spans less than about one decade, where the
    major ticks alone would leave it (nearly) unlabelled.
    """
    from matplotlib.ticker import FuncFormatter, NullFormatter

    lo, hi = axis.get_view_interval()
    wide = lo > 0 and hi / lo > 2e3  # many decades: powers of ten throughout, for consistency

    def plain(v, _pos=None):
        if v <= 0 or not math.isfinite(v):
            return ""
        k = round(math.log10(v))
        if wide and math.isclose(v, 10.0 ** k):
            return f"$10^{{{k}}}$"
        return f"{v:g}"

    axis.set_major_formatter(FuncFormatter(plain))
    if lo > 0 and hi / lo < 3:
        axis.set_minor_formatter(FuncFormatter(plain))
    elif lo > 0 and hi / lo < 12:
        axis.set_minor_formatter(FuncFormatter(
            lambda v, _p: plain(v) if f"{v:.1e}"[0] in "235" else ""))
    else:
        axis.set_minor_formatter(NullFormatter())
