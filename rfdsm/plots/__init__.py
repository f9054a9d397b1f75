"""Figures from tidy result tables: learning curves, phase diagrams, m dependence, validation.

Every function takes a pandas DataFrame and returns a :class:`matplotlib.figure.Figure` built
without ``pyplot``, so nothing here needs (or changes) a display backend; save it with
:func:`save_figure` (PNG and/or PDF).

Layout: :mod:`.style` (colours, labels, :func:`save_figure`), :mod:`._table` (reading through
:func:`rfdsm.load_results`, checks, the seed summary), :mod:`._layout` (panels and grids), one
module per figure family (:mod:`.curves`, :mod:`.phase`, :mod:`.mdependence`,
:mod:`.dynamics` for a training-time axis ``tau``,
:mod:`.validation`, :mod:`.structured` for several intrinsic dimensions ``psi_d``),
:mod:`.select` (every figure a table supports) and :mod:`.cli`
(``rfdsm plot``).  A new figure family is a new module plus a kind in :mod:`.select`.

Input tables
------------
*Result table* (what ``rfdsm sweep`` writes and :func:`rfdsm.load_results` reads; also the
concatenation of :meth:`rfdsm.Result.rows`): one row per setting x evaluator x d x seed, with
at least the columns ``evaluator`` (``"theory"`` or ``"simulate"``), ``psi_n``, ``psi_p``, ``m``
(integer or ``inf``; the string ``"inf"`` is accepted), ``t``, ``lam``, ``activation``, ``d``
(null for theory), ``train`` and ``test``; ``score``, ``seed`` and ``converged`` are used when
present.  Simulation rows are averaged over seeds here (mean and standard error of the mean,
:func:`rfdsm.sweep.store.seed_summary`); theory rows with ``converged == False`` are left out
of the lines (with a warning).

*Validation table* (:func:`validation_scatter`; built from a result table by
:func:`validation_table`): one row per setting x d x error, with the columns

    ``error``     which error: ``"train"``, ``"test"`` or ``"score"``
    ``d``         the simulation dimension
    ``theory``    the d -> infinity value
    ``sim_mean``  the mean of the simulation over seeds
    ``sim_se``    its standard error (NaN or 0 with a single seed)

and optionally the setting columns ``psi_n, psi_p, m, t, lam, activation``.  The table of
:func:`rfdsm.validate.validation_table`, which names two of these ``quantity`` and ``sim``, is
accepted as it is.

Symbols follow ``docs/model.md``: ``psi_n = n/d``, ``psi_p = p/d``, ``m`` noise samples per data
point, diffusion time ``t`` with ``a = exp(-t)``; the Bayes level ``a^2 = exp(-2t)`` is the
smallest possible test error.
"""

from __future__ import annotations

from ._layout import MAX_PANELS
from ._table import (ERROR_NAMES, RESULT_COLUMNS, SETTING_COLUMNS, VALIDATION_COLUMNS,
                     aggregate, load_table)
from .curves import learning_curves
from .dynamics import early_stopping_plot, gap_heatmap, gram_spectrum, tau_curves
from .mdependence import m_dependence
from .phase import PHASE_QUANTITIES, phase_diagram
from .select import KINDS, make_figures
from .structured import boundary_diagram, psi_d_curves
from .style import FORMATS, save_figure
from .validation import validation_scatter, validation_table

__all__ = [
    "SETTING_COLUMNS", "RESULT_COLUMNS", "VALIDATION_COLUMNS", "load_table", "aggregate",
    "learning_curves", "phase_diagram", "m_dependence", "validation_table",
    "validation_scatter", "save_figure",
    "make_figures", "KINDS", "FORMATS", "ERROR_NAMES", "PHASE_QUANTITIES", "MAX_PANELS",
    "psi_d_curves", "boundary_diagram",
    "tau_curves", "gram_spectrum", "gap_heatmap", "early_stopping_plot",
]
