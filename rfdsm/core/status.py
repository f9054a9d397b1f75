"""One vocabulary for how a computation ended, shared by every result type of rfdsm.

Every result (:class:`rfdsm.Result` of the simulator, the theory and the sampler; the optimal
ridge; the early-stopping point; a time-scale) answers ``success`` (a bool: the number can be
used as it stands), ``status`` (one of :data:`STATUSES`) and ``message`` (empty on plain
success, else one sentence saying what happened), as scipy's ``OptimizeResult`` does.
"""

from __future__ import annotations

__all__ = ["STATUSES", "SUCCESS", "OK", "NOT_CONVERGED", "DIVERGENT", "AT_BOUND", "NOT_REACHED",
           "UNDEFINED", "UNCERTAIN", "FAILED", "check_status", "Outcome"]

OK = "ok"                        # converged, or found inside its search range
UNCERTAIN = "uncertain"          # a value, but its reading is not sharp (say why in message)
DIVERGENT = "divergent"          # the quantity itself is infinite here (e.g. an interpolation threshold)
NOT_CONVERGED = "not_converged"  # a solver, sampler or integrator that did not meet its tolerance
AT_BOUND = "at_bound"            # an optimum on the edge of its search interval or grid
NOT_REACHED = "not_reached"      # a time or threshold the curve never reaches
UNDEFINED = "undefined"          # the quantity does not exist in this setting (message: why)
FAILED = "failed"                # nothing usable was computed

#: Every status, in this order of severity.
STATUSES = (OK, UNCERTAIN, DIVERGENT, AT_BOUND, NOT_REACHED, UNDEFINED, NOT_CONVERGED, FAILED)

#: Statuses whose value can be used as it stands (``success``).
SUCCESS = (OK, UNCERTAIN, DIVERGENT)


def check_status(status: str) -> str:
    if status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
    return status


class Outcome:
    """Mixin of a result with a ``status`` attribute: ``success`` from it."""

    @property
    def success(self) -> bool:
        return self.status in SUCCESS
