"""Old home of the subspace split metrics (now :mod:`rfdsm.metrics.split`)."""

import warnings

from .metrics.split import SPLIT_METRICS, split_errors  # noqa: F401

warnings.warn("rfdsm.subspace moved to rfdsm.metrics.split", DeprecationWarning, stacklevel=2)
