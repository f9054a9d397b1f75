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
``eta`` (S7), moments ``tr K^k / p`` from density and atoms and in closed form (S8).  Data
with a covariance spectrum (a subspace, ``psi_d < 1``; docs/theory.md Sec. 12) use the same
equations with the traces (H7)-(H8) for the averages.  The work of one spectrum is bounded;
past a bound, or when density and atoms miss mass or moments, it is not converged.
"""

from __future__ import annotations

import math
import sys
import types
from dataclasses import dataclass, field

import numpy as np

from .common import ge_constants, ge_spectrum
from .stieltjes import ETA_MIN, descend, equations, spectral_scale, structured_equations

__all__ = ["spectrum", "stieltjes", "closed_form_moments", "atom_weights", "SpectrumResult"]

_ATOM_FLOOR = 1e-7  # atom weights below this are reported as none
_MAX_DIPS = 64  # most local minima of the density refined per round (32 points each)
_MAX_BULKS = 64  # more bulk intervals than this: the density is not resolved (e.g. noise)
#: Newton steps (summed over points) one spectrum may take, a few seconds of one core: a point
#: costs 20 to 570 steps (19 levels of eta, at most 30 steps each), a typical spectrum ~2e5.
#: Past it every further solve fails at once and the result is not converged.
_WORK_BUDGET = 1_000_000
#: Density and atoms must give the moments of eq. (S8) to this (relative): a part of the
#: spectrum the grid missed may carry little mass and much of a moment.
_MOMENT_TOL = 1e-5


def _check_setting(setting):
    """The law of the data, or a ValueError naming what the spectrum has no equations for: a
    law other than a centred Gaussian, or the linear activation on structured data."""
    from ..core.setting import Setting

    if not isinstance(setting, Setting):
        raise ValueError(f"setting must be an rfdsm.Setting, got {type(setting).__name__}")
    # the law, not the model's name: psi_d < 1 keeps the name "isotropic" but restricts the
    # law to a subspace, and a user model may state N(0, I) under any name
    from ..data import GaussianLaw
    from .routing import law_of

    law = law_of(setting)
    model = setting.data_model
    what = model.name if setting.psi_d == 1.0 else (
        f"{setting.data} restricted to psi_d = {setting.psi_d:g}, i.e. {model.name}")
    if not (isinstance(law, GaussianLaw) and law.is_centred):
        why = (f"a law with a mean, |mu|^2/d = {law.mean_norm:g}" if isinstance(law, GaussianLaw)
               else law.describe())
        raise ValueError(f"the spectrum has equations for centred Gaussian data x_0 ~ N(0, Sigma) "
                         f"only, not for the data model {what} ({why}); simulate its Gram "
                         "instead (rfdsm.simulate.spectrum.gram_eigenvalues)")
    if not law.is_isotropic and (setting.sigma.coefficients[2] == 0.0
                                 or setting.sigma.name == "linear"):
        raise ValueError(f"the spectrum of structured data ({what}) needs a nonlinear activation "
                         "(mu_star > 0: with the linear one the Gram is singular on the "
                         "complement of the data); simulate its Gram instead "
                         "(rfdsm.simulate.spectrum.gram_eigenvalues)")
    return law


def _constants(setting):
    """The GE constants: (T2) for isotropic data, (H3) at the data's variance otherwise."""
    if _check_setting(setting).is_isotropic:
        return ge_constants(setting)
    from .ge_structured import structured_ge

    return structured_ge(setting).constants


def _model(setting, nodes):
    """``(equations, spectral scale, GE constants)``: the Marchenko-Pastur fixed points in
    closed form for isotropic data, the traces of Sec. 12 for a covariance spectrum."""
    if _check_setting(setting).is_isotropic:
        sp = ge_spectrum(setting, nodes)
        return equations(setting, sp), spectral_scale(setting, sp), ge_constants(setting)
    eqs, scale = structured_equations(setting)
    return eqs, scale, eqs.rule.constants


def stieltjes(setting, z, *, nodes: int = 800):
    """``g(z) = lim (1/p) tr (K - z)^{-1}`` at complex ``z`` (array; ``Im z >= 0``, real ``z`` below
    the spectrum allowed) and a mask of the points whose fixed point converged (eq. (S1))."""
    eqs, scale, _ = _model(setting, nodes)
    z = np.atleast_1d(np.asarray(z, dtype=complex))
    eta = np.maximum(z.imag, ETA_MIN * scale)
    g, ok = descend(eqs, z.real, eta, scale)
    return g, ok


def _member_traces(pi, psi_p):
    """``<X>``, ``<X Y>``, ``<X Y Z>`` (``<.> = (1/p) tr``) of members ``(A, alpha)`` of the
    family (H5), by Wick's theorem on the columns of ``W`` (``p x d``, ``p/d = psi_p``) at
    leading order: with ``M_A = W diag(A) W^T/d`` and ``[f] = sum_k pi_k f_k``,
    ``<M_A> = [A]``, ``<M_A M_B> = [A][B] + psi_p [AB]``, ``<M_A M_B M_C> = [A][B][C] +
    psi_p ([AB][C] + [AC][B] + [BC][A]) + psi_p^2 [ABC]`` (one atom: the moments ``1``,
    ``1 + psi_p``, ``1 + 3 psi_p + psi_p^2`` of the Marchenko-Pastur law)."""
    av = lambda f: float(np.dot(pi, f))  # noqa: E731

    def two(A, B):
        return av(A) * av(B) + psi_p * av(A * B)

    def one(X):
        return av(X.A) + X.alpha

    def pair(X, Y):
        return two(X.A, Y.A) + Y.alpha * av(X.A) + X.alpha * av(Y.A) + X.alpha * Y.alpha

    def triple(X, Y, Z):
        (A, a), (B, b), (C, c) = X, Y, Z
        three = (av(A) * av(B) * av(C)
                 + psi_p * (av(A * B) * av(C) + av(A * C) * av(B) + av(B * C) * av(A))
                 + psi_p ** 2 * av(A * B * C))
        return (three + c * two(A, B) + b * two(A, C) + a * two(B, C)
                + b * c * av(A) + a * c * av(B) + a * b * av(C) + a * b * c)

    return one, pair, triple


def closed_form_moments(setting, nodes: int = 800) -> dict:
    """``lim tr K^k / p`` for ``k = 1, 2, 3`` from the GE covariances (eq. (S8)); ``k = 3`` for
    ``m = 1`` and ``m = inf`` only.  ``<.> = (1/p) tr``: Marchenko-Pastur averages for isotropic
    data (exact for polynomials of degree < nodes), the traces of :func:`_member_traces` for a
    covariance spectrum (the derivation of (S8) never commutes two covariances)."""
    if _check_setting(setting).is_isotropic:
        sp = ge_spectrum(setting, nodes)
        avg = lambda f: float(np.dot(sp.w, f))  # noqa: E731
        one, pair = avg, lambda X, Y: avg(X * Y)
        triple = lambda X, Y, Z: avg(X ** 3 if X is Y is Z else X * Y * Z)  # noqa: E731
        Sig, C = sp.Sigma, sp.C
    else:
        from .ge_structured import structured_ge

        ge = structured_ge(setting)
        one, pair, triple = _member_traces(ge.pi, setting.psi_p)
        Sig, C = ge.Sigma, ge.C
    r = setting.psi_p / setting.psi_n
    m = setting.m
    out = {1: one(Sig)}
    if m == 1:
        C = Sig  # one copy: the shared and the copy-specific parts are not told apart
    share = 1.0 if m == math.inf else (m - 1.0) / m
    # cross term of two data points: m(m-1) pairs of copies share C, m pairs are the same copy
    out[2] = pair(Sig, Sig) + r * (share * one(C) ** 2 + (1.0 - share) * one(Sig) ** 2)
    if m == 1 or m == math.inf:
        out[3] = triple(Sig, Sig, Sig) + 3.0 * r * one(C) * pair(C, Sig) + r * r * one(C) ** 3
    return out


def _floor(setting) -> float:
    """The bottom of the limiting spectrum: ``K >= 0``; ``U >= kappa_i^2`` for ``m = inf``
    (its GE form is a sum of nonnegative matrices plus ``kappa_i^2 I_p``)."""
    return _constants(setting).kappa_i2 if setting.m == math.inf else 0.0


def atom_weights(setting) -> dict:
    """Rank counting (eq. (S6)): where ``K`` has an atom and its weight, ``{location: weight}``.

    ``m`` finite: ``rank K = min(p, N, p_eff)`` with ``N = m n`` and ``p_eff = d`` for the
    linear activation (else ``p``); ``m = inf``: the range of ``U - kappa_i^2`` is spanned by the
    ``n`` averaged features and the ``min(p, d)`` directions of ``W``.
    """
    psi_p, psi_n = setting.psi_p, setting.psi_n
    linear = _constants(setting).mu_star2 == 0.0
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
        self.eqs, self.scale, self.constants = _model(setting, nodes)
        self.eta = ETA_MIN * self.scale
        self.atoms = []
        self.failed = 0
        self.steps = 0  # Newton steps summed over points: the work done
        self.budget = _WORK_BUDGET
        self.ran_out = ""  # the first phase cut short by the budget
        step = self.eqs.step

        def counted(u, z):
            self.steps += int(np.size(z))
            if self.steps > self.budget:  # out of work: this and every further solve fail
                self.ran_out = self.ran_out or "solving the fixed points"
                return u, np.full(np.shape(z), np.inf)
            return step(u, z)

        self.eqs.step = counted

    def spent(self, phase: str) -> bool:
        """Whether the work budget is used up (then ``phase`` is the one cut short)."""
        if self.steps < self.budget:
            return False
        self.ran_out = self.ran_out or phase
        return True

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
    # rounding level: relative to the peak, but the peak of a narrow bulk (~ mass/width) must
    # not lift it above the density of the wide ones (>= their mass/scale)
    floor = min(1e-9 * float(rho.max()), 1e-8 / ev.scale)
    on &= rho > floor
    capped = False
    for _ in range(refine):
        if ev.spent("refining the grid"):
            break
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
        if ev.spent("locating the bulk edges"):
            break
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
        if change <= tol or order >= max_order or ev.spent("integrating the density"):
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
    finite-size spectrum, which the limit (of its centred version, Sec. 0) leaves out.  Data
    ``x_0 ~ N(0, Sigma)`` with a covariance spectrum (``psi_d < 1``, ``spectrum(...)``) use the
    equations of Sec. 12; other laws are refused with a ValueError naming them.

    The work is bounded (:data:`_WORK_BUDGET` Newton steps, at most :data:`_MAX_DIPS` dips
    refined per round); past a bound, or when density and atoms do not give mass 1 and the
    moments (S8), the result has ``converged = False`` and the reason in ``message``.
    """
    _check_setting(setting)
    if eta is not None and not (isinstance(eta, (int, float, np.integer, np.floating))
                                and not isinstance(eta, bool) and eta > 0 and math.isfinite(eta)):
        raise ValueError(f"eta must be a finite number > 0, got {eta!r}")
    ev = _Evaluator(setting, nodes)
    E_out = _grid(setting, ev.scale, E)  # checked before any work
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
    mass = float(integrals[0])
    moments = {k: float(integrals[k] + sum(wt * loc ** k for loc, wt in ev.atoms))
               for k in (1, 2, 3)}
    ev.budget = math.inf  # the density asked for is computed whatever the search cost
    if eta is None:
        dens = ev.density(E_out)
    else:
        dens = ev.g(E_out + 1j * float(eta)).imag / math.pi
    total = mass + sum(wt for _, wt in ev.atoms)
    closed = closed_form_moments(setting, nodes)
    problems = []
    if ev.ran_out:
        problems.append(f"the work budget ({_WORK_BUDGET:.2g} Newton steps) ran out while "
                        f"{ev.ran_out}: edges, mass and moments are incomplete")
    if ev.failed:
        problems.append(f"{ev.failed} fixed-point solves did not converge"
                        + (" (or were not attempted)" if ev.ran_out else ""))
    if many:
        problems.append("the density splits into more than "
                        f"{_MAX_BULKS} bulks on the grid (not resolved; left unintegrated)")
    if capped:
        problems.append(f"more than {_MAX_DIPS} dips of the density between grid points: "
                        "gaps between bulks may be missed")
    if ichange > 1e-8:
        problems.append(f"the integrals over the bulks are resolved only to {ichange:.2g}")
    if abs(total - 1.0) > 1e-6:
        problems.append(f"density and atoms have mass {total:.8g}, not 1")
    off = {k: abs(moments[k] - v) / max(abs(v), 1e-300) for k, v in closed.items()}
    worst = max(off, key=off.get)
    if not many and not off[worst] <= _MOMENT_TOL:
        problems.append(f"tr K^{worst}/p from density and atoms differs from the closed form "
                        f"(S8) by {off[worst]:.2g} (relative)")
    converged = not problems
    # notes that do not make the spectrum wrong
    counted = atom_weights(setting).get(floor, 0.0)
    if abs(counted - (w0 if w0 > _ATOM_FLOOR else 0.0)) > 1e-6:
        problems.append(f"the weight {w0:.6g} at {floor:.6g} is not an atom by rank counting "
                        f"({counted:.6g}): a bulk within the resolution ({1e-8 * ev.scale:.2g}) "
                        "of the bottom of the spectrum")
    k = ev.constants
    # the structured constants come from a quadrature: an odd activation's mu0 is rounding there
    if abs(k.mu0) > 1e-12 * math.sqrt(k.mu1 ** 2 + k.mu_star2):
        problems.append(f"mu0 = {k.mu0:.4g}: the finite-size K has an outlier ~ mu0^2 p, not in "
                        "this limit")
    message = "; ".join(problems) if problems else "ok"
    diag = {"nodes": nodes, "scale": ev.scale, "eta": ev.eta if eta is None else float(eta),
            "quadrature_change": 0.0,  # the averages are exact: no finer rule to compare with
            "integration_change": ichange, "integration_order": order, "total_mass": total,
            "newton_steps": ev.steps,
            "atoms_rank_counting": [[float(a), float(b)] for a, b in atom_weights(setting).items()]}
    return SpectrumResult(setting, E_out, dens, [(float(a), float(b)) for a, b in ev.atoms], bulks,
                          mass, moments, closed, converged, message, diag)


class _CallableModule(types.ModuleType):
    """``rfdsm.theory.spectrum`` is this module and the function :func:`spectrum` at once (as
    ``rfdsm.theory`` is for :func:`rfdsm.theory.theory`): calling the module calls it."""

    def __call__(self, *args, **kwargs):
        return spectrum(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
