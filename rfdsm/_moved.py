"""Old module paths of rfdsm, still importable (with a DeprecationWarning) after the layout
that shows the layers: ``import rfdsm.setting`` gives :mod:`rfdsm.core.setting`, and so on,
so that user code and pickles (sweep journals name classes by module) keep working."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

#: old module -> its home now
MOVED = {
    "rfdsm.params": "rfdsm.core.params",
    "rfdsm.setting": "rfdsm.core.setting",
    "rfdsm.result": "rfdsm.core.result",
    "rfdsm._registry": "rfdsm.core.registry",
    "rfdsm._config_checks": "rfdsm.core.checks",
    "rfdsm._gauss": "rfdsm.activations.gauss",
    "rfdsm._kernels": "rfdsm.activations.kernels",
    "rfdsm.validate": "rfdsm.analysis.validate",
    "rfdsm.validate_sets": "rfdsm.analysis.validate_sets",
    "rfdsm.optimal": "rfdsm.analysis.optimal",
    "rfdsm.timescales": "rfdsm.analysis.timescales",
    "rfdsm.early_stopping": "rfdsm.analysis.early_stopping",
    "rfdsm.diagnostics": "rfdsm.analysis.bias_variance",
    "rfdsm.covariance": "rfdsm.data.spectrum",
    "rfdsm.subspace": "rfdsm.metrics.split",
    "rfdsm.sample.evaluator": "rfdsm.evaluators.sample",
    "rfdsm.sample.cli": "rfdsm.cli.sample",
    "rfdsm.theory.spectrum_cli": "rfdsm.cli.spectrum",
    "rfdsm.plots.cli": "rfdsm.cli.plot",
}

#: old modules that are public API and keep working without a warning
QUIET = {"rfdsm.diagnostics", "rfdsm.timescales", "rfdsm.early_stopping", "rfdsm.optimal",
         "rfdsm.validate"}


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path=None, target=None):
        if name in MOVED:
            return importlib.util.spec_from_loader(name, self)
        return None

    def create_module(self, spec):
        if spec.name not in QUIET:
            warnings.warn(f"{spec.name} moved to {MOVED[spec.name]}", DeprecationWarning,
                          stacklevel=3)
        module = importlib.import_module(MOVED[spec.name])
        sys.modules[spec.name] = module
        self._spec = module.__spec__  # the import system overwrites it with the alias's
        return module

    def exec_module(self, module):
        # the module keeps its own spec, so that its relative imports resolve from its home
        module.__spec__ = self._spec


def install() -> None:
    if not any(isinstance(f, _Alias) for f in sys.meta_path):
        sys.meta_path.append(_Alias())
