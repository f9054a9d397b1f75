"""Old home of :class:`rfdsm.data.Spectrum` (now :mod:`rfdsm.data.spectrum`)."""

import warnings

from .data.spectrum import WEIGHT_SUM_TOL, Spectrum, parse_spectrum, subspace  # noqa: F401

warnings.warn("rfdsm.covariance moved to rfdsm.data.spectrum", DeprecationWarning, stacklevel=2)
