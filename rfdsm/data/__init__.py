"""Data models: the law of ``x_0`` (``docs/model.md``), the data seam.

A data model states its law (:mod:`rfdsm.data.base`: :class:`GaussianLaw` with a mean and a
covariance spectrum, :class:`MixtureLaw`, :class:`SampledLaw`); the simulator, the theory and
the sampler read that descriptor and never ask a model's name.  Built-in: ``isotropic``
(:class:`Isotropic`, ``N(0, I_d)``) and the covariance spectra :class:`Spectrum`, named by
their text form ``spectrum(w1:v1,w2:v2,...)`` (no registration; TOML also takes
``{weights = [...], values = [...]}``); ``psi_d < 1`` restricts a model to a subspace
(:func:`subspace`).  A new data model is a subclass of :class:`DataModel` with a ``law()``
plus one :func:`register_data`; identity is by content and a pickled model travels by value,
as for activations and estimators.

The orientation of ``Sigma`` does not matter for the errors: ``W`` has i.i.d. Gaussian
entries, so ``W O`` has the law of ``W`` for any orthogonal ``O``, and data ``O x_0`` with
features ``W O^T`` give the same errors as ``x_0`` with ``W`` (``tests/test_structured.py``
checks both the distribution and the exact identity).
"""

from __future__ import annotations

from ..core.registry import Registry
from .base import (WEIGHT_SUM_TOL, DataModel, GaussianLaw, MixtureLaw, SampledLaw,
                   check_atoms)
from .isotropic import Isotropic
from .spectrum import Spectrum, parse_spectrum, subspace

__all__ = ["DataModel", "GaussianLaw", "MixtureLaw", "SampledLaw", "Isotropic", "Spectrum",
           "subspace", "parse_spectrum", "register_data", "get_data", "registered_data",
           "check_atoms", "WEIGHT_SUM_TOL"]

_REGISTRY = Registry("data model", "data", DataModel, builtins=lambda: (Isotropic(),))

#: Data models named by a text form ``prefix(...)``, no registration needed: the prefix, the
#: module (loaded on first use) and its parser.  A new parametrised law is one module and one
#: row here.
TEXT_FORMS = {
    "spectrum(": (".spectrum", "parse_spectrum", "spectrum(w1:v1,w2:v2,...)"),
    "shifted(": (".shifted", "parse_shifted", "shifted(r), r = |mu|^2/d"),
}


def _text_form(name):
    if isinstance(name, str):
        for prefix, (module, parser, _) in TEXT_FORMS.items():
            if name.strip().startswith(prefix):
                import importlib

                return getattr(importlib.import_module(module, __name__), parser)
    return None


def register_data(model: DataModel, *, overwrite: bool = False) -> DataModel:
    """Add ``model`` under ``model.name`` (``Setting(data=model.name)`` then finds it)."""
    if _text_form(getattr(model, "name", None)) is not None:
        raise ValueError(f"data model names starting with one of {', '.join(TEXT_FORMS)} are "
                         f"text forms of built-in laws, got {model.name!r}")
    return _REGISTRY.register(model, overwrite)


def get_data(name: str) -> DataModel:
    """The registered data model ``name``, or the model its text form names (:data:`TEXT_FORMS`)."""
    parse = _text_form(name)
    if parse is not None:
        return parse(name)
    return _REGISTRY.get(name)


def registered_data() -> tuple[str, ...]:
    return _REGISTRY.names()
