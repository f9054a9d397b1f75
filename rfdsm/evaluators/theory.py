"""The sweep adapter of the theory (:func:`rfdsm.theory`)."""

from __future__ import annotations

from .base import Evaluator, _metric_names, as_setting, group_curves


class Theory(Evaluator):
    """The ``d -> inf`` limit (:func:`rfdsm.theory`): one task per curve along the sweep's
    curve axis, solved in order so that each point starts from its neighbour's solution."""

    name, finite_size, style, label = "theory", False, "line", "theory"
    options = ("metrics",)

    def parse(self, section):
        # limits of metrics computed only on request (rfdsm.metrics, default=False)
        return {"metrics": _metric_names(section["metrics"], "theory")} if "metrics" in section \
            else {}

    def count(self, section, points, curve_points):
        return points, points // curve_points

    def check(self, settings, options):
        # refuse at load time what the equations do not cover (an estimator or data model
        # without theory, a finite tau on structured data), not one failed task per curve later
        from ..theory import solver_for

        for s in settings:
            try:
                solver_for(s)
            except ValueError as exc:
                raise ValueError(f"[theory] grid point {s}: {exc}") from None

    def tasks(self, settings, options, curve):
        tasks = [self._task(c) for c in group_curves(settings, curve)]
        if options.get("metrics"):
            for t in tasks:
                t["metrics"] = list(options["metrics"])
        return tasks

    def run(self, task):
        from ..theory import theory_curve

        settings = [as_setting(s) for s in task["settings"]]
        results = list(theory_curve(settings, metrics=task["metrics"]) if task.get("metrics")
                       else theory_curve(settings))
        if len(results) != len(settings) or any(r.setting != s
                                                 for r, s in zip(results, settings)):
            raise RuntimeError("the theory returned results that do not match the requested "
                               "settings")
        return [row for r in results for row in r.rows()]
