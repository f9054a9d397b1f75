"""rfdsm: precise learning curves of denoising score matching with random features.

One setting, two evaluators::

    import rfdsm
    s = rfdsm.Setting(psi_n=2, psi_p=4, m=float("inf"), t=0.1, lam=0.01, activation="tanh")
    sim = rfdsm.simulate(s, d=200, seed=0, n_seeds=4)   # finite-size simulation
    th = rfdsm.theory(s)                                 # d -> infinity limit

Both return a :class:`rfdsm.Result` with ``train``, ``test`` and ``score`` as in ``docs/model.md``.
"""

from . import _moved
from ._version import __version__
from .activations import Activation, get_activation, register_activation, registered_activations
from .core.result import ERRORS, Result
from .core.setting import Setting
from . import simulate  # the subpackage, callable: rfdsm.simulate(setting, d=...)

_moved.install()  # old module paths (rfdsm.setting, rfdsm.covariance, ...) still import

__all__ = [
    "__version__", "Setting", "Result", "ERRORS", "simulate", "theory", "sample", "load_results",
    "Activation", "register_activation", "get_activation", "registered_activations",
]


def __getattr__(name):
    # Heavier subsystems load on first use so that `import rfdsm` stays quick.
    if name == "theory":  # the subpackage, callable: rfdsm.theory(setting)
        import importlib
        return importlib.import_module(".theory", __name__)
    if name == "load_results":
        from .sweep import load_results
        return load_results
    if name == "sample":  # the subpackage, callable: rfdsm.sample(setting, d=...)
        import importlib
        return importlib.import_module(".sample", __name__)
    raise AttributeError(f"module 'rfdsm' has no attribute {name!r}")
