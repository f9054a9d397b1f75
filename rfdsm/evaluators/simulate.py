"""The sweep adapter of the simulator (:func:`rfdsm.simulate`)."""

from __future__ import annotations

import math

from ..core.checks import check_int, count_values, parse_dims, show
from .base import Evaluator, _metric_names, as_setting, digest, group_curves, setting_key


class Simulate(Evaluator):
    """The exact finite-``d`` simulator (:func:`rfdsm.simulate`): one task per
    (setting, d, seed), the largest dimensions first so that the long tasks start early and a
    pool drains evenly.

    Settings that differ only in ``tau`` share their draws, moments and the eigenbasis of the
    training Gram, so they are one task per (d, seed): :func:`rfdsm.simulate.simulate_tau_curve`
    gives all their rows from one fit.  A group of one setting keeps the task key of a sweep
    without a ``tau`` axis, so journals written before the grouping resume."""

    name, finite_size, style, label = "simulate", True, "points", "simulation"
    options = ("d", "seeds", "seed", "metrics")

    def parse(self, section):
        out = {"d": parse_dims(section, "simulate", "the dimension(s) to simulate"), "seeds": check_int(section.get("seeds", 1), "simulate.seeds", 1),
               "seed": check_int(section.get("seed", 0), "simulate.seed", 0)}
        if "metrics" in section:  # metrics computed only on request (rfdsm.metrics, default=False)
            out["metrics"] = _metric_names(section["metrics"])
        return out

    def check(self, settings, options):
        for s in settings:
            for d in options["d"]:
                try:
                    s.sizes(d)
                except ValueError as exc:
                    raise ValueError(f"simulate.d = {show(d)} with psi_n = {s.psi_n:g}, "
                                     f"psi_p = {s.psi_p:g}: {exc}") from None

    def count(self, section, points, curve_points):
        seeds = section.get("seeds", 1)
        seeds = seeds if isinstance(seeds, int) and not isinstance(seeds, bool) and seeds >= 1 \
            else 1
        rows = points * count_values(section.get("d")) * seeds
        return rows, rows

    def count_grid(self, section, sizes, curve):
        # the grid is a product, so grouping along tau divides the tasks by its length
        rows, _ = self.count(section, math.prod(sizes.values()), sizes.get(curve, 1))
        return rows, rows // sizes.get("tau", 1)

    def tasks(self, settings, options, curve):
        from ..metrics import simulation_metrics

        # the metrics travel with the task (by value), like the setting's objects: one
        # registered only in the parent (a script's __main__, a notebook) reaches the workers
        metrics = simulation_metrics(options.get("metrics"))
        first, count = options["seed"], options["seeds"]
        out = []
        for group in group_curves(settings, "tau"):
            keys = "\n".join(setting_key(s) for s in group)
            for d in options["d"]:
                for seed in range(first, first + count):
                    task = {"key": f"simulate:{digest(f'{keys}|{d}|{seed}')}",
                            "kind": self.name, "d": d, "seed": seed, "rows": len(group),
                            "evaluator": self, "metrics": metrics}
                    if len(group) == 1:  # the task format (and key) of the first journals
                        task["setting"] = group[0]
                    else:
                        task["settings"] = list(group)
                    out.append(task)
        out.sort(key=lambda t: -t["d"])
        return out

    def run(self, task):
        from ..simulate import simulate, simulate_tau_curve

        d, seed, metrics = task["d"], task["seed"], task.get("metrics")
        if "settings" not in task:
            return simulate(as_setting(task["setting"]), d, seed=seed, metrics=metrics).rows()
        settings = [as_setting(s) for s in task["settings"]]
        try:
            results = simulate_tau_curve(settings[0], [s.tau for s in settings], d, seed=seed,
                                         metrics=metrics)
        except NotImplementedError:
            # an estimator given only by its solve() has no filter to apply per tau
            results = [simulate(s, d, seed=seed, metrics=metrics) for s in settings]
        if [r.setting for r in results] != settings:
            raise RuntimeError("the tau curve returned results that do not match the "
                               "requested settings")
        return [row for r in results for row in r.rows()]


# --- the registry --------------------------------------------------------------------------
