"""``rfdsm plot DIR``: every figure a sweep's table supports, as files.

Loaded by :mod:`rfdsm.cli` only when the subcommand runs; matplotlib is imported only once
there is something to draw.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from ..plots.select import KINDS
from ..plots.style import FORMATS

__all__ = ["configure_parser", "run_cli"]


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.description = ("Draw figures from a sweep directory (or one .parquet/.csv result "
                          "table): learning curves, phase diagram, m dependence, theory vs "
                          "simulation -- whichever the table supports, or those named by --kind.")
    parser.add_argument("dir", metavar="DIR", help="sweep output directory or result file")
    parser.add_argument("--out", metavar="FIGDIR", default=None,
                        help="where to write the figures (default: DIR/figures)")
    parser.add_argument("--format", default="png",
                        help="comma-separated output formats among png, pdf (default: png)")
    parser.add_argument("--kind", default="auto",
                        help=f"comma-separated among {', '.join(KINDS)} (default: "
                             "auto, from what the table contains)")
    parser.add_argument("--x", choices=("psi_p", "psi_n"), default=None,
                        help="x axis of the learning curves (default: the more finely "
                             "sampled of the two)")


def _parse_options(args):
    """``(formats, kinds)`` from ``--format`` and ``--kind`` (``kinds`` None for auto)."""
    from . import UsageError

    formats = [f.strip().lower() for f in args.format.split(",") if f.strip()]
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise UsageError(f"--format must be a comma-separated subset of {list(FORMATS)}, "
                         f"got {args.format!r}")
    kinds = None
    if args.kind != "auto":
        kinds = [k.strip() for k in args.kind.split(",") if k.strip()]
        bad = [k for k in kinds if k not in KINDS]
        if bad or not kinds:
            raise UsageError(f"--kind must be 'auto' or a comma-separated subset of "
                             f"{list(KINDS)}, got {args.kind!r}")
    return formats, kinds


def run_cli(args) -> int:
    from . import UsageError, writable_dir
    # looked up at call time, through the package, so that rfdsm.plots.load_table is the
    # one used (tests replace it to simulate unreadable files)
    from ..plots import load_table, make_figures

    formats, kinds = _parse_options(args)
    src = Path(args.dir)
    out = Path(args.out) if args.out else (src / "figures" if src.is_dir() else
                                           src.parent / "figures")
    try:
        df = load_table(src)
    except ValueError as exc:
        raise UsageError(str(exc).replace("\n", " ")) from None
    except OSError as exc:
        raise UsageError(f"{str(src)!r}: cannot read the table: {exc.strerror or exc}") from None
    writable_dir(out, "--out")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", RuntimeWarning)
            make_figures(df, out, formats, kinds, args.x,
                         report=lambda p: print(p, flush=True))
    except ValueError as exc:
        raise UsageError(str(exc).replace("\n", " ")) from None
    except OSError as exc:  # e.g. the disk filled up while writing
        raise UsageError(f"--out {str(out)!r}: cannot write the figures: "
                         f"{exc.strerror or exc}") from None
    # our own notes (e.g. unconverged theory points left out), once each, without tracebacks
    notes = dict.fromkeys(str(w.message) for w in caught
                          if str(w.message).startswith(("learning_curves:", "m_dependence:")))
    for note in notes:
        print(f"rfdsm: note: {note}", file=sys.stderr)
    return 0
