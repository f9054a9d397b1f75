"""Limiting eigenvalue distribution of the training Gram ``K`` (docs/theory.md, Sec. 9).

``K = F F^T / N`` for finite ``m`` and the noise-averaged ``U`` for ``m = inf`` (the matrix ``S``
of :mod:`rfdsm.simulate.fit`).  Its Stieltjes transform ``g(z) = lim (1/p) tr (K - z)^{-1}`` is
the deterministic equivalent that the solvers use at ``z = -lam``, continued to complex ``z``
(eq. (S1)): ``g(z) = <1/D(s; z)>`` with

    m = 1:     g = (kappa/(-z)) <1/(Sigma + kappa)>,
               -z = kappa (1 - r <Sigma/(Sigma + kappa)>)              (S2, = T8 at lam = -z)
    m = inf:   D = x C + Sc - z,   1 - x - r <x C / D> = 0             (S3, = T13)
    finite m:  D = -z + alpha C + theta Sc, omega = r/m (<C/D>, <Sc/D>) (S4, = F4)

(``r = psi_p/psi_n``).  Each ``z = E + i eta`` is reached by descending in ``eta`` from far above
the real axis, Newton's method warm-started at each level, so that the root followed is the one
continued from ``z = inf`` (the Stieltjes branch): no continuation along ``E``, which can jump
branches at a bulk edge.  Density ``Im g(E + i0)/pi`` (S5), atoms from ``(E0 - z) g(z)`` near
the bottom ``E0`` of the spectrum (S6), bulk edges where the density stops being independent of
``eta`` (S7), moments ``tr K^k / p`` from density and atoms and in closed form (S8).
"""

from __future__ import annotations

import math
import sys
import types
from dataclasses import dataclass, field

import numpy as np

from .common import ge_constants, ge_spectrum
from .stieltjes import ETA_MIN, descend, equations, spectral_scale

__all__ = ["spectrum", "stieltjes", "closed_form_moments", "atom_weights", "SpectrumResult"]

_ATOM_FLOOR = 1e-7  # atom weights below this are reported as none
_MAX_DIPS = 64  # most local minima of the density refined per round (32 points each)
_MAX_BULKS = 64  # more bulk intervals than this: the density is not resolved (e.g. noise)


def _check_setting(setting):
    from ..core.setting import Setting

    if not isinstance(setting, Setting):
        raise ValueError(f"setting must be an rfdsm.Setting, got {type(setting).__name__}")
    # the law, not the model's name: psi_d < 1 keeps the name "isotropic" but restricts the
    # law to a subspace, and a user model may state N(0, I) under any name
    from ..data import GaussianLaw
    from .routing import law_of

    law = law_of(setting)
    if not (isinstance(law, GaussianLaw) and law.is_isotropic):
        model = setting.data_model
        what = model.name if setting.psi_d == 1.0 else (
            f"{setting.data} restricted to psi_d = {setting.psi_d:g}, i.e. {model.name}")
        raise ValueError(f"the spectrum has equations for isotropic data x_0 ~ N(0, I) only, "
                         f"not for the data model {what} ({law.describe()}); simulate its "
                         "Gram instead (rfdsm.simulate.spectrum.gram_eigenvalues)")


def stieltjes(setting, z, *, nodes: int = 800):
    """``g(z) = lim (1/p) tr (K - z)^{-1}`` at complex ``z`` (array; ``Im z >= 0``, real ``z`` below
    the spectrum allowed) and a mask of the points whose fixed point converged (eq. (S1))."""
    _check_setting(setting)
    z = np.atleast_1d(np.asarray(z, dtype=complex))
    sp = ge_spectrum(setting, nodes)
    scale = spectral_scale(setting, sp)
    eta = np.maximum(z.imag, ETA_MIN * scale)
    g, ok = descend(equations(setting, sp), z.real, eta, scale)
    return g, ok


def closed_form_moments(setting, nodes: int = 800) -> dict:
    """``lim tr K^k / p`` for ``k = 1, 2, 3`` from the GE covariances (eq. (S8)); ``k = 3`` for
    ``m = 1`` and ``m = inf`` only.  ``<.>`` are Marchenko-Pastur averages (exact for
    polynomials of degree < nodes)."""
    sp = ge_spectrum(setting, nodes)
    avg = lambda f: float(np.dot(sp.w, f))  # noqa: E731
    r = setting.psi_p / setting.psi_n
    Sig, C = sp.Sigma, sp.C
    m = setting.m
    out = {1: avg(Sig)}
    if m == 1:
        C = Sig  # one copy: the shared and the copy-specific parts are not told apart
    share = 1.0 if m == math.inf else (m - 1.0) / m
    # cross term of two data points: m(m-1) pairs of copies share C, m pairs are the same copy
    out[2] = avg(Sig * Sig) + r * (share * avg(C) ** 2 + (1.0 - share) * avg(Sig) ** 2)
    if m == 1 or m == math.inf:
        out[3] = avg(Sig ** 3) + 3.0 * r * avg(C) * avg(C * Sig) + r * r * avg(C) ** 3
    return out


def _floor(setting) -> float:
    """The bottom of the limiting spectrum: ``K >= 0``; ``U >= kappa_i^2`` for ``m = inf``
    (its GE form is a sum of nonnegative matrices plus ``kappa_i^2 I_p``)."""
    return ge_constants(setting).kappa_i2 if setting.m == math.inf else 0.0


def atom_weights(setting) -> dict:
    """Rank counting (eq. (S6)): where ``K`` has an atom and its weight, ``{location: weight}``.

    ``m`` finite: ``rank K = min(p, N, p_eff)`` with ``N = m n`` and ``p_eff = d`` for the
    linear activation (else ``p``); ``m = inf``: the range of ``U - kappa_i^2`` is spanned by the
    ``n`` averaged features and the ``min(p, d)`` directions of ``W``.
    """
    psi_p, psi_n = setting.psi_p, setting.psi_n
    k = ge_constants(setting)
    linear = k.mu_star2 == 0.0
    if setting.m == math.inf:
        rank = min(1.0, psi_p) + (0.0 if linear else psi_n)
    else:
        rank = min(psi_p, setting.m * psi_n, 1.0 if linear else math.inf)
    weight = max(0.0, 1.0 - rank / psi_p)
    return {_floor(setting): weight} if weight > 0 else {}


@dataclass
class SpectrumResult:
    """Limiting spectrum of the training Gram: ``density`` (continuous part) on the grid ``E``,
    ``atoms`` as ``(location, weight)``, ``edges`` as the ``(lower, upper)`` ends of each bulk,
    ``mass`` the integral of the density, ``moments[k] = lim tr K^k / p`` from density and atoms
    and ``moments_closed`` from eq. (S8)."""

    setting: object
    E: np.ndarray
    density: np.ndarray
    atoms: list
    edges: list
    mass: float
    moments: dict
    moments_closed: dict
    converged: bool
    message: str
    diagnostics: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"setting": self.setting.to_dict(), "E": self.E.tolist(),
                "density": self.density.tolist(), "atoms": [list(a) for a in self.atoms],
                "edges": [list(e) for e in self.edges], "mass": self.mass,
                "moments": {str(k): v for k, v in self.moments.items()},
                "moments_closed": {str(k): v for k, v in self.moments_closed.items()},
                "converged": self.converged, "message": self.message,
                "diagnostics": self.diagnostics}


class _Evaluator:
    """The continuous density ``Im g(E + i0)/pi`` with the atoms' Lorentzians removed."""

    def __init__(self, setting, nodes):
        self.sp = ge_spectrum(setting, nodes)
        self.eqs = equations(setting, self.sp)
        self.scale = spectral_scale(setting, self.sp)
        self.eta = ETA_MIN * self.scale
        self.atoms = []
        self.failed = 0

    def g(self, z):
        z = np.asarray(z, dtype=complex)
        g, ok = descend(self.eqs, z.real, np.where(z.imag > 0, z.imag, self.eta), self.scale)
        self.failed += int((~ok).sum())
        return g

    def density(self, E, eta=None):
        E = np.asarray(E, dtype=float)
        eta = self.eta if eta is None else eta
        rho = self.g(E + 1j * eta).imag / math.pi
        for loc, wt in self.atoms:
            rho = rho - wt * eta / (math.pi * ((E - loc) ** 2 + eta ** 2))
        return np.maximum(rho, 0.0)

    def inside(self, E, floor):
        """Whether ``E`` is in a bulk (eq. (S7)): there the density does not depend on ``eta``,
        in a gap it is the ``O(eta)`` tail of the bulks nearby (which near a steep edge exceeds
        any fixed threshold), so it drops 64-fold with ``eta``."""
        E = np.asarray(E, dtype=float)
        both = self.density(np.r_[E, E], np.r_[np.full(E.size, self.eta),
                                                np.full(E.size, self.eta / 64.0)])
        rho, fine = both[:E.size], both[E.size:]
        return (fine > 0.5 * rho) & (rho > floor), rho

    def atom(self, E0):
        """``lim (E0 - z) g(z)`` as ``z -> E0`` from below (eq. (S6)): the pole part of ``g`` at
        ``z = E0 - eps + i eta`` is exactly ``w/(E0 - z)``; the ``O(eps)`` rest is extrapolated
        away from two ``eps``."""
        eps = np.array([1e-8, 1e-9]) * self.scale
        z = E0 - eps + 1j * self.eta
        wts = ((E0 - z) * self.g(z)).real
        return float(wts[1] - (wts[0] - wts[1]) / 9.0)


def _bulks(ev, grid, bisections=32, refine=3):
    """Bulk intervals: runs of grid points inside a bulk (:meth:`_Evaluator.inside`), their ends
    refined by bisection on the same criterion (all ends at once).  A gap narrower than the grid
    shows as a local minimum of the density there: those cells are refined (``refine`` times)
    before the runs are taken."""
    on, rho = ev.inside(grid, 0.0)
    floor = 1e-9 * float(rho.max())
    on &= rho > floor
    capped = False
    for _ in range(refine):
        # minima at the level of the floor are rounding in a gap, not a gap between bulks
        i = np.flatnonzero((rho[1:-1] <= rho[:-2]) & (rho[1:-1] <= rho[2:])
                           & (rho[1:-1] > floor)) + 1
        if i.size == 0:
            break
        if i.size > _MAX_DIPS:
            # each round multiplies the grid by up to 32: keep the deepest dips (lowest
            # beside their neighbours), so that the work stays bounded
            depth = rho[i] / np.minimum(rho[i - 1], rho[i + 1])
            i = np.sort(i[np.argsort(depth, kind="stable")[:_MAX_DIPS]])
            capped = True
        extra = np.concatenate([np.linspace(grid[j - 1], grid[j + 1], 34)[1:-1] for j in i])
        on_x, rho_x = ev.inside(extra, floor)
        grid, on, rho = np.r_[grid, extra], np.r_[on, on_x], np.r_[rho, rho_x]
        order = np.argsort(grid)
        grid, on, rho = grid[order], on[order], rho[order]
    starts = np.flatnonzero(on[1:] & ~on[:-1]) + 1
    stops = np.flatnonzero(on[:-1] & ~on[1:])
    if on[0]:
        starts = np.r_[0, starts]
    if on[-1]:
        stops = np.r_[stops, len(grid) - 1]
    outer = np.r_[grid[np.maximum(starts - 1, 0)], grid[np.minimum(stops + 1, len(grid) - 1)]]
    inner = np.r_[grid[starts], grid[stops]]
    for _ in range(bisections):
        mid = 0.5 * (outer + inner)
        inside = ev.inside(mid, floor)[0]
        inner = np.where(inside, mid, inner)
        outer = np.where(inside, outer, mid)
    k = len(starts)
    ends = 0.5 * (outer + inner)
    return [(float(ends[i]), float(ends[k + i])) for i in range(k)], rho, capped


def _integrate_adaptive(ev, bulks, order=256, max_order=4096, tol=1e-9):
    """:func:`_integrate` with ``order`` doubled until the integrals agree to ``tol`` (relative
    to the largest): a density peaked near one end (a bulk whose edge is small beside its width)
    needs more nodes.  Returns the integrals and the last change."""
    prev = _integrate(ev, bulks, order)
    while True:
        order *= 2
        cur = _integrate(ev, bulks, order)
        change = float(np.max(np.abs(cur - prev)) / max(float(np.max(np.abs(cur))), 1e-300))
        if change <= tol or order >= max_order:
            return cur, change, order
        prev = cur


def _integrate(ev, bulks, order=256, kmax=3):
    """``int E^k rho dE`` over the bulks, ``k = 0..kmax``: ``E = c - h cos(theta)`` turns the
    square-root ends into ``sin(theta)^2`` times a smooth function, for which the midpoint
    rule in ``theta`` converges geometrically."""
    out = np.zeros(kmax + 1)
    if not bulks:
        return out
    theta = (np.arange(order) + 0.5) * (math.pi / order)
    nodes, wts = [], []
    for a, b in bulks:
        c, h = 0.5 * (a + b), 0.5 * (b - a)
        nodes.append(c - h * np.cos(theta))
        wts.append(h * np.sin(theta) * (math.pi / order))
    E, w = np.concatenate(nodes), np.concatenate(wts)
    rho = ev.density(E)
    for k in range(kmax + 1):
        out[k] = float(np.dot(w * rho, E ** k))
    return out


def _grid(setting, scale, E):
    if E is not None:
        E = np.asarray(E, dtype=float)
        if E.ndim != 1 or E.size < 1 or not np.all(np.isfinite(E)):
            raise ValueError("E must be a one-dimensional array of finite numbers")
        return E
    # bulks of very different size (Bonnaire et al.: one near kappa_i^2, one of order
    # psi_p/psi_n): a linear and a logarithmic grid together
    floor = _floor(setting)
    return np.unique(np.r_[floor, np.linspace(floor, scale, 321)[1:],
                           floor + np.geomspace(1e-7 * scale, scale, 240)])


def spectrum(setting, E=None, eta=None, *, nodes: int = 400) -> SpectrumResult:
    """Limiting eigenvalue distribution of the training Gram ``K`` of ``setting`` (docs/theory.md,
    Sec. 9): density on the grid ``E`` (default: up to an upper bound of the spectrum, linear and
    logarithmic), atoms, bulk edges, mass and moments ``tr K^k / p``, ``k = 1..3``.

    ``eta``: evaluate the density at ``E + i eta`` (a smoothed density, e.g. to compare with a
    histogram); default ``Im z -> 0+`` (``1e-10`` of the spectral scale).  ``K`` does not depend
    on ``lam`` or ``tau``.  A non-centred activation adds one outlier ``~ mu0^2 p`` to the
    finite-size spectrum, which the limit (of its centred version, Sec. 0) leaves out.
    """
    _check_setting(setting)
    ev = _Evaluator(setting, nodes)
    grid = _grid(setting, ev.scale, None)
    floor = _floor(setting)
    w0 = ev.atom(floor)
    if w0 > _ATOM_FLOOR:
        ev.atoms = [(floor, w0)]
    bulks, _, capped = _bulks(ev, grid)
    many = len(bulks) > _MAX_BULKS
    if many:  # integrating thousands of slivers costs minutes and means nothing
        bulks = []
    integrals, ichange, order = _integrate_adaptive(ev, bulks)
    # the MP averages are exact (stieltjes._ExactMP): nothing to compare with a finer rule
    change = 0.0
    mass = float(integrals[0])
    moments = {k: float(integrals[k] + sum(wt * loc ** k for loc, wt in ev.atoms))
               for k in (1, 2, 3)}
    E_out = _grid(setting, ev.scale, E)
    if eta is None:
        dens = ev.density(E_out)
    else:
        if not (eta > 0 and math.isfinite(eta)):
            raise ValueError(f"eta must be a finite number > 0, got {eta!r}")
        dens = ev.g(E_out + 1j * float(eta)).imag / math.pi
    total = mass + sum(wt for _, wt in ev.atoms)
    problems = []
    if ev.failed:
        problems.append(f"{ev.failed} fixed-point solves did not converge")
    if many:
        problems.append("the density splits into more than "
                        f"{_MAX_BULKS} bulks on the grid (not resolved; left unintegrated)")
    if capped:
        problems.append(f"more than {_MAX_DIPS} dips of the density between grid points: "
                        "gaps between bulks may be missed")
    if change > 1e-8:
        problems.append(f"the quadrature of the MP law moves the moments by {change:.2g}")
    if ichange > 1e-8:
        problems.append(f"the integrals over the bulks are resolved only to {ichange:.2g}")
    if abs(total - 1.0) > 1e-6:
        problems.append(f"density and atoms have mass {total:.8g}, not 1")
    k = ge_constants(setting)
    if k.mu0 != 0.0:
        problems.append(f"mu0 = {k.mu0:.4g}: the finite-size K has an outlier ~ mu0^2 p, not in "
                        "this limit")
    converged = not any("mu0" not in p for p in problems)
    message = "; ".join(problems) if problems else "ok"
    diag = {"nodes": nodes, "scale": ev.scale, "eta": ev.eta if eta is None else float(eta),
            "quadrature_change": change, "integration_change": ichange,
            "integration_order": order, "total_mass": total,
            "atoms_rank_counting": [[float(a), float(b)] for a, b in atom_weights(setting).items()]}
    return SpectrumResult(setting, E_out, dens, [(float(a), float(b)) for a, b in ev.atoms], bulks,
                          mass, moments, closed_form_moments(setting, nodes), converged, message,
                          diag)


class _CallableModule(types.ModuleType):
    """``rfdsm.theory.spectrum`` is this module and the function :func:`spectrum` at once (as
    ``rfdsm.theory`` is for :func:`rfdsm.theory.theory`): calling the module calls it."""

    def __call__(self, *args, **kwargs):
        return spectrum(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
