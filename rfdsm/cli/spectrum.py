"""``rfdsm spectrum``: the limiting eigenvalue density of the training Gram K of one setting
(:func:`rfdsm.theory.spectrum`), optionally beside the eigenvalues of a simulated K."""

from __future__ import annotations

import json
import sys


def configure_parser(p) -> None:
    from . import add_setting_arguments, int_at_least

    add_setting_arguments(p)
    p.add_argument("--d", type=int_at_least(1), default=None,
                   help="also simulate K at this dimension and print its moments tr K^k / p")
    p.add_argument("--seed", type=int_at_least(0), default=0, help="seed of the simulated K")
    p.add_argument("--json", action="store_true",
                   help="print a JSON object (with the density on its grid)")
    p.add_argument("--quiet", action="store_true",
                   help="no progress bar (on stderr, while K is simulated with --d)")
    p.epilog = ("exit status: 0 converged; 1 not converged (printed, not trustworthy); "
                "2 bad argument")


def _simulated_moments(setting, args, bar):
    """``tr K^k / p`` of the simulated ``K`` at ``args.d``; ``bar`` (or ``None``) moves on as
    each stage begins."""
    from ..simulate.spectrum import gram_eigenvalues, gram_moments

    def stage(text):
        if bar is not None:
            bar.set_description_str(f"rfdsm spectrum: {text}", refresh=False)
            bar.update(1)

    ev = gram_eigenvalues(setting, args.d, args.seed, stage=stage)
    stage("done")
    return gram_moments(ev)


def run_cli(args) -> int:
    from . import UsageError, setting_from_args
    from ..theory import spectrum

    setting = setting_from_args(args)
    bar = None
    if args.d is not None:
        from ..simulate import _checked_args

        try:  # every size before any work: the theory first would hide a refusal for seconds
            _checked_args(setting, args.d, args.seed, 1, False, block_bytes=None, chunk=None,
                          mc_test=0, backend="cpu", dtype="float64")
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        if not args.quiet:
            from tqdm.auto import tqdm

            bar = tqdm(total=3, unit="step", desc="rfdsm spectrum: theory", file=sys.stderr,
                       dynamic_ncols=True, bar_format="{desc} [{n}/{total}] {elapsed}")
    try:
        try:
            res = spectrum(setting)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        sim = None
        if args.d is not None:
            sim = _simulated_moments(setting, args, bar)
    finally:
        if bar is not None:
            bar.close()
    if args.json:
        out = res.to_dict()
        if sim is not None:
            out["simulated_moments"] = {str(k): float(v) for k, v in sim.items()}
            out["d"], out["seed"] = args.d, args.seed
        from ..core.result import plain  # strict JSON: NaN -> null, inf -> "inf"

        print(json.dumps(plain(out), allow_nan=False))
    else:
        print(f"spectrum of K  {setting}")
        for lo, hi in res.edges:
            print(f"  bulk   [{lo:.6g}, {hi:.6g}]")
        for at, w in res.atoms:
            print(f"  atom   at {at:.6g}, weight {w:.6g}")
        for k, v in sorted(res.moments.items()):
            line = f"  tr K^{k}/p = {v:.6g}"
            if sim is not None and k in sim:
                line += f"   (simulated, d = {args.d}: {float(sim[k]):.6g})"
            print(line)
        note = f"  ({res.message})" if res.message and res.message != "ok" else ""
        print(f"  converged = {res.converged}{note}")
    return 0 if res.converged else 1
