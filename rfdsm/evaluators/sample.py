"""The sampler as a sweep evaluator: ``f_mem`` in the same tidy table as the learning curves.

A sweep section ``[sample]`` takes ``d`` (required), ``seeds``, ``seed`` as ``[simulate]``
does, and the options of :func:`rfdsm.sample` (``n_samples``, ``score``, ``method``,
``t_min``, ``T``, ``steps``, ``times``, ``schedule``, ``threshold``, ``n_bootstrap``,
``theory``).  One task per (setting, d, seed); its row holds the sampling columns
(:data:`rfdsm.sample.record.ROW_COLUMNS`) beside ``train``, ``test``, ``score`` and the other
simulation metrics of the same seed at the setting's own ``t`` (the row
:func:`rfdsm.simulate` gives: the same draw of ``W`` and the training set), so that
``f_mem`` and the test-train gap of one fit sit in one row.
"""

from __future__ import annotations

import json

from ..core.checks import check_int, parse_dims, show
from .base import Evaluator, as_setting, digest, setting_key
from .simulate import Simulate
from ..sample.options import DEFAULTS, check_options

__all__ = ["Sample"]

_SAMPLING = tuple(DEFAULTS)


class Sample(Evaluator):
    """Generated points per (setting, d, seed): memorised fraction, Frechet distance, KL
    bound, with the simulation's errors of the same fit at the setting's ``t``."""

    name, finite_size, style, label = "sample", True, "points", "sampler"
    options = ("d", "seeds", "seed", *_SAMPLING)

    def parse(self, section):
        ds = parse_dims(section, "sample", "the dimension(s) to sample at")
        given = {k: section[k] for k in _SAMPLING if k in section}
        try:
            opts = check_options(**given)
        except ValueError as exc:
            raise ValueError(f"sample.{exc}") from None
        opts["times"] = section.get("times", DEFAULTS["times"])  # as given: JSON for the hash
        return {"d": ds, "seeds": check_int(section.get("seeds", 1), "sample.seeds", 1),
                "seed": check_int(section.get("seed", 0), "sample.seed", 0), **opts}

    def check(self, settings, options):
        from ..sample import check_size

        sizing = check_options(**{k: options[k] for k in _SAMPLING})
        for s in settings:
            for d in options["d"]:
                try:
                    n, _ = s.sizes(d)
                except ValueError as exc:
                    raise ValueError(f"sample.d = {show(d)} with psi_n = {s.psi_n:g}, "
                                     f"psi_p = {s.psi_p:g}: {exc}") from None
                if n < 2:
                    raise ValueError(f"sample.d = {d} with psi_n = {s.psi_n:g} gives n = {n}; "
                                     "the memorised fraction needs n >= 2 training points")
                try:  # before any task runs, --dry-run included
                    check_size(s, int(d), sizing)
                except ValueError as exc:
                    raise ValueError(f"sample: {exc}") from None

    count = Simulate.count  # one row per (point, d, seed), as a simulation

    def tasks(self, settings, options, curve):
        from ..metrics import simulation_metrics

        metrics = simulation_metrics()
        sampling = {k: options[k] for k in _SAMPLING}
        text = json.dumps(sampling, sort_keys=True)
        first, count = options["seed"], options["seeds"]
        out = []
        for s in settings:
            for d in options["d"]:
                for seed in range(first, first + count):
                    key = digest(f"{setting_key(s)}|{d}|{seed}|{text}")
                    out.append({"key": f"sample:{key}", "kind": self.name, "setting": s,
                                "d": d, "seed": seed, "rows": 1, "evaluator": self,
                                "metrics": metrics, "sampling": sampling})
        out.sort(key=lambda t: -t["d"])
        return out

    def run(self, task):
        from ..simulate import simulate
        from ..sample import sample

        setting, d, seed = as_setting(task["setting"]), task["d"], task["seed"]
        res = sample(setting, d=d, seed=seed, **task["sampling"])
        sim = simulate(setting, d, seed=seed, metrics=task.get("metrics")).rows()[0]
        row = {**sim, **res.row(), "evaluator": self.name,
               "converged": bool(sim["converged"]) and res.converged,
               "wall_time": sim["wall_time"] + res.wall_time}
        return [row]
