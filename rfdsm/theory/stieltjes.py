"""Stieltjes transform of the training Gram at complex ``z`` (docs/theory.md, Sec. 9, eqs. S1-S4).

The deterministic equivalents of the ridge solvers (eqs. (T8), (T13), (F4)) at ``lam = -z``,
solved by Newton's method vectorised over an array of ``z``; :func:`descend` reaches each
``z = E + i eta`` from far above the real axis so that the root followed is the Stieltjes
branch.  :mod:`rfdsm.theory.spectrum` builds density, atoms, edges and moments on it.

The averages over ``S`` come from a rule: :class:`_Rule`, the Marchenko-Pastur quadrature of
Sec. 6 (the gradient-flow solver, :mod:`rfdsm.theory.flow`, refines it); :class:`_ExactMP`,
the same averages in closed form (isotropic data); :class:`_Members`, the traces (H6)-(H8) of
Sec. 12 continued to complex arguments (data with a covariance spectrum,
:func:`structured_equations`).
"""

from __future__ import annotations

import math

import numpy as np

from .common import ge_constants

__all__ = ["equations", "structured_equations", "descend", "spectral_scale", "ETA_MIN"]

ETA_MIN = 1e-10  # final eta, relative to the spectral scale: the density is Im g(E + i0)/pi
_ETA_MAX = 10.0  # first eta, relative to the scale: far enough that the start below converges
_ETA_RATIO = 0.25  # eta shrinks by this per level
_EDGE_TOL = 1e-6  # step size accepted at max_iter (double root at a bulk edge, see descend)
_SIGN_TOL = 1e-12  # rounding allowed in the sign conditions of the Stieltjes branch
_NEWTON_TOL = 1e-13


# ---------------------------------------------------------------------------------------------
# The three fixed points, vectorised over an array of complex z.  Every GE covariance is linear
# in the eigenvalue s of S (eq. (T4)), so is every D(s) = A s + B, and all averages are the five
# moments <s^j/D> (j = 0, 1) and <s^j/D^2> (j = 0, 1, 2): one reciprocal per node and point.
# Each class: ``start(z)``, one Newton ``step(u, z) -> (u_new, |step|/|u|)``, ``valid(u)`` (the
# sign conditions of the Stieltjes branch) and ``g(u, z)``.


class _Rule:
    """The MP rule with the GE covariances as ``(slope, intercept)`` in ``s``."""

    def __init__(self, setting, sp):
        k = ge_constants(setting)
        m1 = k.mu1 * k.mu1
        self.w, self.s = sp.w, sp.s
        self.W1 = np.stack([sp.w, sp.w * sp.s], axis=1)
        self.W2 = np.stack([sp.w, sp.w * sp.s, sp.w * sp.s ** 2], axis=1)
        self.Sig = (m1, k.mu_star2)
        self.C = (m1 * setting.a ** 2, k.kappa_s2)
        self.Sc = (m1 * setting.h, k.kappa_i2)
        self.mass = float(np.sum(sp.w))

    def inv(self, A, B):
        return 1.0 / (np.multiply.outer(A, self.s) + B[:, None])

    @staticmethod
    def mean(f):
        """``<f>`` for ``f = f1 s + f0`` (``<s> = 1``)."""
        return f[0] + f[1]

    @staticmethod
    def slope(f, like):
        """The slope of ``f`` for every point of ``like`` (the ``A`` of ``D = A s + B``)."""
        return np.full(like.shape, f[0], dtype=complex)

    def mean_inv(self, A, B):
        """``<1/D>`` for ``D = A s + B``."""
        return self.inv(A, B) @ self.w

    def moments(self, A, B):
        """``(<1/D>, <s/D>)`` and ``(<1/D^2>, <s/D^2>, <s^2/D^2>)`` for ``D = A s + B``."""
        q = self.inv(A, B)
        return (q @ self.W1).T, ((q * q) @ self.W2).T

    @staticmethod
    def lin(f, M):
        """``<f/D>`` for ``f = f1 s + f0`` from ``M = (<1/D>, <s/D>)``."""
        return f[0] * M[1] + f[1] * M[0]

    @staticmethod
    def quad(f, g, N):
        """``<f g/D^2>`` for linear ``f``, ``g`` from ``N = (<1/D^2>, <s/D^2>, <s^2/D^2>)``."""
        return f[0] * g[0] * N[2] + (f[0] * g[1] + f[1] * g[0]) * N[1] + f[1] * g[1] * N[0]


class _ExactMP(_Rule):
    """The averages of :class:`_Rule` in closed form: exact integrals against the
    Marchenko-Pastur law of ratio ``gamma = psi_p`` instead of a quadrature on its nodes.

    With ``D = A (s - w)``, ``w = -B/A``, everything follows from the MP Stieltjes transform
    ``m(w) = <1/(s - w)>``, the root of ``gamma w m^2 + (w - 1 + gamma) m + 1 = 0`` with
    ``m ~ -1/w`` at infinity (``sqrt(w - s_-) sqrt(w - s_+)`` has its cut on the support
    only), and ``m' = <1/(s - w)^2>``:

        <s/(s - w)>     = m/(1 + gamma m)
        <s/(s - w)^2>   = m'/(1 + gamma m)^2
        <s^2/(s - w)^2> = m' (1 + gamma + gamma (gamma - 1) m)/(1 + gamma m)^3

    (no cancellation for large ``|w|``, where ``1 + w m -> 0``).  A rule on nodes resolves the
    density of ``K`` only where its broadening ``Im D`` exceeds the spacing of the nodes: at
    large ``t`` (``C -> 0``) its density is a comb of near-atoms at the nodes.
    """

    def __init__(self, setting, sp):
        super().__init__(setting, sp)
        self.gamma = float(setting.psi_p)
        self.lo = (1.0 - math.sqrt(self.gamma)) ** 2
        self.hi = (1.0 + math.sqrt(self.gamma)) ** 2
        self.mass = 1.0

    def _m(self, w):
        g = self.gamma
        b = w - 1.0 + g
        root = np.sqrt(w - self.lo) * np.sqrt(w - self.hi)
        # the two forms of the same root; each loses digits where the other does not
        big = np.abs(b + root) >= np.abs(root - b)
        with np.errstate(divide="ignore", invalid="ignore"):
            m = np.where(big, -2.0 / np.where(big, b + root, 1.0),
                         (root - b) / np.where(big, 1.0, 2.0 * g * w))
            dm = -(g * m * m + m) / (2.0 * g * w * m + b)
        return m, dm

    def _w(self, A, B):
        # A = 0 (an activation with mu1 = 0): D = B whatever s, i.e. w = inf
        A = np.broadcast_to(np.asarray(A, dtype=complex), np.shape(B))
        flat = A == 0
        with np.errstate(divide="ignore", invalid="ignore"):
            return A, flat, np.where(flat, 1.0, -B / np.where(flat, 1.0, A))

    def mean_inv(self, A, B):
        A, flat, w = self._w(A, B)
        m, _ = self._m(w)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(flat, 1.0 / B, m / np.where(flat, 1.0, A))

    def moments(self, A, B):
        A, flat, w = self._w(A, B)
        g = self.gamma
        m, dm = self._m(w)
        e = 1.0 + g * m
        with np.errstate(divide="ignore", invalid="ignore"):
            A1 = np.where(flat, 1.0, A)
            A2 = A1 * A1
            M = np.array([m / A1, m / e / A1])
            N = np.array([dm / A2, dm / (e * e) / A2,
                          dm * (1.0 + g + g * (g - 1.0) * m) / (e * e * e) / A2])
            if flat.any():  # <s> = 1, <s^2> = 1 + gamma
                iB = 1.0 / B
                M = np.where(flat, np.array([iB, iB]), M)
                N = np.where(flat, np.array([iB * iB, iB * iB, (1.0 + g) * iB * iB]), N)
        return M, N


class _Members:
    """The averages for data with a covariance spectrum (docs/theory.md, Sec. 12): ``D`` and the
    GE covariances (H4) are members ``W diag(A) W^T/d + alpha I_p`` of the family (H5), and
    ``<X/D> = t1(X)/psi_p``, ``<X Y/D^2> = t2(X, Y)/psi_p`` are the traces (H7)-(H8) in the root
    ``e = (1/d) tr Q`` of (H6), continued to complex ``Delta`` and ``c`` (they are rational in
    them).  (H6) has a root per atom plus one; Newton's method on it starts from the root of
    the previous evaluation (``warm``, carried along the descent by :class:`_Carried`: from far
    away it can reach another root), or from ``e = psi_p/(c + sum pi Delta)``, the root far
    from the spectrum.

    Covariances are ``(A, alpha)`` with ``A`` of shape ``(atoms, 1)``, so that ``x A`` for an
    array ``x`` of points has shape ``(atoms, points)``; ``moments`` returns ``(<1/D>, state)``
    and ``(<1/D^2>, state)``, the first entries as those of :class:`_Rule`.
    """

    mass = 1.0

    def __init__(self, pi, psi_p, Sig, C, Sc):
        col = lambda f: (np.asarray(f[0], dtype=float).reshape(-1, 1), float(f[1]))  # noqa: E731
        self.pi = np.asarray(pi, dtype=float)
        self.psi = float(psi_p)
        self.Sig, self.C, self.Sc = col(Sig), col(C), col(Sc)
        self.warm = None
        self.last_e = None

    def avg(self, x):
        """``sum_k pi_k x_k`` over the leading (atom) axis."""
        return np.tensordot(self.pi, x, axes=1)

    def mean(self, f):
        """``<X> = (1/p) tr X = sum_k pi_k A_k + alpha`` (each column of ``W`` has norm^2 ``p``)."""
        return float(self.avg(f[0].ravel())) + f[1]

    @staticmethod
    def slope(f, like):
        return f[0] + 0.0 * like

    def _root(self, Delta, c):
        psi = self.psi
        cold = psi / (c + self.avg(Delta))
        e = self.warm
        e = cold if e is None or np.shape(e) != c.shape else np.where(np.isfinite(e), e, cold)
        done = np.zeros(c.shape, dtype=bool)
        for _ in range(100):
            u = 1.0 / (1.0 + Delta * e)
            step = (e * (c + self.avg(Delta * u)) - psi) / (c + self.avg(Delta * u * u))
            done = np.abs(step) <= 1e-15 * np.abs(e)
            e = np.where(done, e, e - step)
            if done.all():
                break
        u = 1.0 / (1.0 + Delta * e)
        H = e * (c + self.avg(Delta * u)) - psi
        # a double root (an edge of the law of W diag(Delta) W^T/d) converges slowly, to ~sqrt(eps)
        return np.where(done | (np.abs(H) <= 1e-10 * psi), e, np.nan)

    def _solve(self, A, B):
        B = np.asarray(B, dtype=complex)
        Delta = np.broadcast_to(np.asarray(A, dtype=complex), (self.pi.size,) + B.shape)
        e = self._root(Delta, B)
        self.last_e = e
        u = 1.0 / (1.0 + Delta * e)
        return e, u, B + self.avg(Delta * u * u)

    def moments(self, A, B):
        st = self._solve(A, B)
        e, _, slope = st
        return (e / self.psi, st), (e / (slope * self.psi), st)

    def mean_inv(self, A, B):
        """``<1/D> = e/psi_p``."""
        return self._solve(A, B)[0] / self.psi

    def lin(self, f, M):
        """``<X/D> = (1/psi_p)(1/d) tr(X Q)``, eq. (H7)."""
        e, u, _ = M[1]
        return e * (f[1] + self.avg(f[0] * u)) / self.psi

    def quad(self, f, g, N):
        """``<X Y/D^2> = (1/psi_p)(1/d) tr(X Q Y Q)``, eq. (H8)."""
        e, u, slope = N[1]
        u2 = u * u
        x = f[1] + self.avg(f[0] * u2)
        y = g[1] + self.avg(g[0] * u2)
        return (e * x * y / slope + e * e * self.avg(f[0] * g[0] * u2)) / self.psi


class _M1:
    """Eq. (S2): unknown ``kappa`` (complex effective ridge; ``kappa -> kappa_0 > 0`` as
    ``z -> 0`` above ``p = n``, so the atom at 0 is regular in it).  ``Sigma + kappa`` is the
    ``D`` of the rule, ``Sigma/(Sigma + kappa) = 1 - kappa/(Sigma + kappa)``."""

    def __init__(self, rule, r):
        self.rule, self.r = rule, r

    def start(self, z):
        R = self.rule
        return -(z - self.r * R.mean(R.Sig))  # <Sigma>

    def step(self, kappa, z):
        R = self.rule
        M, N = R.moments(R.slope(R.Sig, kappa), R.Sig[1] + kappa)
        q1 = R.mass - kappa * M[0]
        q2 = R.mass - 2.0 * kappa * M[0] + kappa * kappa * N[0]
        f = kappa * (1.0 - self.r * q1) + z
        new = kappa - f / (1.0 - self.r * q2)
        return new, np.abs(new - kappa) / np.abs(new)

    @staticmethod
    def valid(kappa, z=None):
        # kappa = 1/m_ with m_ the Stieltjes transform of the N x N companion F^T F/N
        return kappa.imag <= _SIGN_TOL * np.abs(kappa)

    def g(self, kappa, z):
        R = self.rule
        return -(kappa / z) * R.mean_inv(R.slope(R.Sig, kappa), R.Sig[1] + kappa)


class _Minf:
    """Eq. (S3): unknown ``x = 1/(1 + delta)``, ``x -> 1`` as ``z -> inf``;
    ``D = x C + Sc - z``, ``dh/dx = -1 - r (<C/D> - x <C^2/D^2>)``."""

    def __init__(self, rule, r):
        self.rule, self.r = rule, r

    def start(self, z):
        return np.ones_like(z)

    def _AB(self, x, z):
        C, Sc = self.rule.C, self.rule.Sc
        return x * C[0] + Sc[0], x * C[1] + Sc[1] - z

    def step(self, x, z):
        R = self.rule
        M, N = R.moments(*self._AB(x, z))
        cD = R.lin(R.C, M)
        f = 1.0 - x - self.r * x * cD
        df = -1.0 - self.r * (cD - x * R.quad(R.C, R.C, N))
        new = x - f / df
        return new, np.abs(new - x) / np.maximum(np.abs(new), 1e-300)

    @staticmethod
    def valid(x, z=None):
        # Im delta = r <C Im(1/D)> > 0, so Im x = -Im delta |x|^2 < 0
        return x.imag <= _SIGN_TOL * np.abs(x)

    def g(self, x, z):
        return self.rule.mean_inv(*self._AB(x, z))


class _FiniteM:
    """Eq. (S4): the fixed point (F4) with ``lam = -z``, and its Jacobian (F6) with complex
    entries.  Above the interpolation threshold (``p_eff > N``) ``omega ~ 1/z`` as ``z -> 0``:
    there the unknowns are those of the rescaled form (F5), ``-z omega``, with
    ``(c0, c1) = (1, -z)`` and ``g = <1/D>/(-z)``, regular at the atom ``z = 0``."""

    def __init__(self, rule, r, m, above):
        self.rule, self.r, self.m, self.above = rule, r / m, m, above

    def _c(self, z):
        return (np.ones_like(z), -z) if self.above else (-z, np.ones_like(z))

    def start(self, z):
        if not self.above:
            return np.zeros((2, z.size), dtype=complex)
        R = self.rule  # (F5) at |z| = inf: D = 1, omega = r (<C>, <Sc>)
        return np.array([np.full(z.size, self.r * R.mean(R.C), dtype=complex),
                         np.full(z.size, self.r * R.mean(R.Sc), dtype=complex)])

    def _AB(self, om, z):
        ws, wi = om
        c0, c1 = self._c(z)
        alpha = 1.0 / (c1 + wi + self.m * ws)
        theta = (1.0 - ws * alpha) / (c1 + wi)
        C, Sc = self.rule.C, self.rule.Sc
        return alpha, theta, alpha * C[0] + theta * Sc[0], c0 + alpha * C[1] + theta * Sc[1]

    def step(self, om, z):
        ws, wi = om
        m, r, R = self.m, self.r, self.rule
        alpha, theta, A, B = self._AB(om, z)
        c1 = self._c(z)[1]
        M, N = R.moments(A, B)
        CC, CS, SS = R.quad(R.C, R.C, N), R.quad(R.C, R.Sc, N), R.quad(R.Sc, R.Sc, N)
        F0, F1 = ws - r * R.lin(R.C, M), wi - r * R.lin(R.Sc, M)
        ga0, ga1 = -m * alpha ** 2, -alpha ** 2
        gt0, gt1 = -alpha ** 2, (-ws * ga1 - theta) / (c1 + wi)
        J00, J01 = 1.0 + r * (CC * ga0 + CS * gt0), r * (CC * ga1 + CS * gt1)
        J10, J11 = r * (CS * ga0 + SS * gt0), 1.0 + r * (CS * ga1 + SS * gt1)
        det = J00 * J11 - J01 * J10
        new = np.array([ws - (J11 * F0 - J01 * F1) / det, wi - (J00 * F1 - J10 * F0) / det])
        size = np.maximum(np.abs(new).max(axis=0), 1e-300)
        return new, np.abs(new - om).max(axis=0) / size

    def valid(self, om, z):
        # omega are normalised traces of C and Sc against a resolvent: Im omega >= 0
        if self.above:
            om = om / -z
        return np.all(om.imag >= -_SIGN_TOL * np.abs(om).max(axis=0), axis=0)

    def g(self, om, z):
        _, _, A, B = self._AB(om, z)
        g = self.rule.mean_inv(A, B)
        return g / -z if self.above else g


def equations(setting, sp, exact: bool = True):
    """The fixed point of ``setting`` on the GE covariances of ``sp``: averages over the MP law
    in closed form (``exact``), or on the nodes of ``sp``."""
    r = setting.psi_p / setting.psi_n
    rule = _ExactMP(setting, sp) if exact else _Rule(setting, sp)
    if setting.m == 1:
        return _M1(rule, r)
    if setting.m == math.inf:
        return _Minf(rule, r)
    k = ge_constants(setting)
    p_eff = min(setting.psi_p, 1.0) if k.mu_star2 == 0.0 else setting.psi_p  # as in (F12)
    return _FiniteM(rule, r, int(setting.m), p_eff > setting.m * setting.psi_n)


class _Carried:
    """Equations on a :class:`_Members` rule, with the root ``e`` of (H6) as one more row of the
    state: each solve of (H6) starts from the root at the previous iterate."""

    def __init__(self, eqs):
        self.eqs, self.rule = eqs, eqs.rule
        self.flat = not isinstance(eqs, _FiniteM)  # a state of one row, kept 1-d

    def _outer(self, u):
        return u[0] if self.flat else u[:-1]

    def start(self, z):
        u = np.asarray(self.eqs.start(z), dtype=complex)
        u = u[None, :] if u.ndim == 1 else u
        return np.concatenate([u, np.full((1, z.size), np.nan, dtype=complex)])

    def step(self, u, z):
        self.rule.warm = u[-1]
        new, rel = self.eqs.step(self._outer(u), z)
        new = new[None, :] if new.ndim == 1 else new
        return np.concatenate([new, self.rule.last_e[None, :]]), rel

    def valid(self, u, z):
        return self.eqs.valid(self._outer(u), z)

    def g(self, u, z):
        self.rule.warm = u[-1]
        return self.eqs.g(self._outer(u), z)


def structured_equations(setting):
    """The fixed point of ``setting`` for data ``x_0 ~ N(0, Sigma)`` with a covariance spectrum
    (docs/theory.md Sec. 12): the atoms of the law, the covariances (H4) with the constants
    (H3), on a :class:`_Members` rule.  Returns the equations and an upper bound of the spectrum
    of ``K`` (that of :func:`spectral_scale`, with ``|X| <= max_k A_k s_+ + alpha`` for a
    member, ``s_+ = (1 + sqrt(psi_p))^2`` the top of the law of ``S``)."""
    from .ge_structured import structured_ge

    ge = structured_ge(setting)
    rule = _Members(ge.pi, setting.psi_p, *((X.A, X.alpha) for X in (ge.Sigma, ge.C, ge.Sc)))
    rule.constants = ge.constants
    r = setting.psi_p / setting.psi_n
    if setting.m == 1:
        eqs = _M1(rule, r)
    elif setting.m == math.inf:
        eqs = _Minf(rule, r)
    else:  # nonlinear (the structured theory refuses mu_star = 0): p_eff = p, as in (F12)
        eqs = _FiniteM(rule, r, int(setting.m), setting.psi_p > setting.m * setting.psi_n)
    s_top = (1.0 + math.sqrt(setting.psi_p)) ** 2
    big = lambda X: max(float(np.max(X.A)) * s_top + X.alpha, 0.0)  # noqa: E731
    rN = 0.0 if setting.m == math.inf else r / setting.m
    top = (math.sqrt(big(ge.C)) * (1.0 + math.sqrt(r))
           + math.sqrt(big(ge.Sc)) * (1.0 + math.sqrt(rN)))
    return _Carried(eqs), max(top * top, 1e-300)


def descend(eqs, E, eta, scale, max_iter=30):
    """The fixed point at ``E + i eta`` (arrays), reached from ``eta = _ETA_MAX scale`` by levels
    ``eta -> _ETA_RATIO eta``; returns ``(g, converged mask)``.

    A Newton step that leaves the branch (the sign conditions of ``eqs.valid``, eq. (S1)) is
    halved until it stays on it: near an atom the root moves on the scale ``|z - E0|``, and full
    steps from the previous level can land on a root of the wrong sign."""
    E = np.asarray(E, dtype=float)
    eta = np.broadcast_to(np.asarray(eta, dtype=float), E.shape)
    top = _ETA_MAX * scale
    levels = max(1, int(math.ceil(math.log(top / max(eta.min(), 1e-300)) / -math.log(_ETA_RATIO))))
    u = eqs.start(E + 1j * top)
    ok = np.ones(E.shape, dtype=bool)
    for k in range(1, levels + 1):
        z = E + 1j * np.maximum(top * _ETA_RATIO ** k, eta)
        # the levels above the last only carry the root down: a rough one is a good start
        tol = _NEWTON_TOL if k == levels else 1e-6
        done = np.zeros(E.shape, dtype=bool)
        last = np.zeros(E.shape)
        for _ in range(max_iter):
            idx = np.flatnonzero(~done)
            if idx.size == 0:
                break
            old, zi = u[..., idx], z[idx]
            new, rel = eqs.step(old, zi)
            t = 1.0
            for _ in range(30):
                off = ~eqs.valid(new, zi) & np.isfinite(rel)
                if not off.any():
                    break
                t *= 0.5
                new[..., off] = old[..., off] + t * (new[..., off] - old[..., off])
                rel = np.where(off, t * rel, rel)
            bad = ~np.isfinite(rel) | ~eqs.valid(new, zi)
            u[..., idx] = np.where(bad, old, new)
            last[idx] = rel
            done[idx[((rel <= tol) & (t == 1.0)) | bad]] = True
            ok[idx[bad]] = False
        # at a bulk edge the root is double: rounding of the residual leaves it known to
        # ~sqrt(eps) only, and Newton's steps hop at that level instead of converging
        if k == levels:
            ok &= done | (last <= _EDGE_TOL)
    g = eqs.g(u, E + 1j * eta)
    return g, ok & np.isfinite(g) & (g.imag > -1e-9 * np.abs(g))


def spectral_scale(setting, sp):
    """An upper bound of the spectrum of ``K`` (the norm of ``F/sqrt(N)``, squared): the shared
    part ``phibar`` contributes ``sqrt(|C|)(1 + sqrt(p/n))``, the copy-specific one
    ``sqrt(|Sc|)(1 + sqrt(p/N))`` (``|.|`` the largest value on the MP support)."""
    r = setting.psi_p / setting.psi_n
    rN = 0.0 if setting.m == math.inf else r / setting.m
    top = (math.sqrt(float(sp.C.max())) * (1.0 + math.sqrt(r))
           + math.sqrt(float(sp.Sc.max())) * (1.0 + math.sqrt(rN)))
    return max(top * top, 1e-300)
