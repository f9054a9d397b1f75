"""Errors at a finite training time from one- and two-resolvent traces (docs/theory.md, Sec. 10).

The filter of the fit is a sum of resolvents at complex ridges ``lam_k = -z_k`` (eq. (D2) of
:mod:`rfdsm.theory.flow_poles`), so train and test errors are sums over poles of one-resolvent
traces and over pairs of poles of two-resolvent traces (eqs. (D4)-(D5)).  The one-resolvent
ones are the deterministic equivalents of the ridge solvers continued to complex ridges
(:mod:`rfdsm.theory.stieltjes`, whose fixed points are the input here); the two-resolvent ones
are eq. (D7) (``m = inf``) and eqs. (D9)-(D11) (finite ``m``, ``m = 1`` included).

Every function takes the fixed points at ``n_t`` training times and ``P`` poles (the half with
``Im z > 0``; the other half are their conjugates) and returns ``(train, test)`` arrays of
length ``n_t``.  With ``q_k(s) = 1/D_k(s)`` on the nodes of the Marchenko-Pastur rule, every
integrand is a polynomial of degree <= 2 in ``s`` times ``q_j q_k``, so all pair averages of a
time are three batched matrix products.
"""

from __future__ import annotations

import numpy as np
from numpy.polynomial import polynomial as P

__all__ = ["minf_errors", "finite_m_errors", "covariances"]


def covariances(rule):
    """The GE covariances of eq. (T4) as polynomials in ``s`` (coefficients, increasing order)
    from the ``(slope, intercept)`` pairs of a :class:`rfdsm.theory.stieltjes._Rule`."""
    poly = lambda f: np.array([f[1], f[0]], dtype=float)  # noqa: E731
    return {"Sigma": poly(rule.Sig), "C": poly(rule.C), "Sc": poly(rule.Sc),
            "T": np.array([0.0, rule.Sc[0]]), "1": np.array([1.0])}


def _with_conjugates(a, axis=-1):
    return np.concatenate([a, np.conj(a)], axis=axis)


class _Pairs:
    """``<f q_j>`` and ``<f q_j q_k>`` for polynomials ``f`` of degree <= 2 in ``s`` (every
    integrand here: products of two GE covariances), ``j`` over the poles and ``k`` over poles
    and conjugates: three batched matrix products per rule; and the sums of eq. (D4) over both
    halves (conjugate symmetry: twice the real part)."""

    def __init__(self, rule, q, beta, lam_k):
        w, s = rule.w, rule.s
        q_t = np.swapaxes(q, 1, 2)  # (n_t, nodes, P)
        self.m1 = [q @ w, q @ (w * s)]
        self.m2 = []  # (n_t, P, 2P): the conjugate poles are the last P columns
        for j in range(3):
            qw = q * (w * s ** j)
            self.m2.append(np.concatenate([qw @ q_t, qw @ np.conj(q_t)], axis=2))
        self.beta, self.beta_all = beta, _with_conjugates(beta)
        self.lam_all = _with_conjugates(lam_k)  # (n_t, 2P)

    def one(self, f):
        return sum(c * self.m1[j] for j, c in enumerate(f) if c != 0.0)

    def two(self, f):
        return sum(c * self.m2[j] for j, c in enumerate(f) if c != 0.0)

    def sum1(self, a):
        """``sum_k beta_k a_k`` over all poles, ``a`` given on the half (n_t, P)."""
        return 2.0 * np.real(a @ self.beta)

    def sum2(self, c, weighted=False):
        """``sum_{j,k} beta_j beta_k c_jk`` (``weighted``: times ``lam_k``), ``c`` (n_t, P, 2P)."""
        bk = self.beta_all[None, :] * (self.lam_all if weighted else 1.0)
        return 2.0 * np.real(np.einsum("tjk,tk->tj", c, bk) @ self.beta)

    @property
    def total(self):
        return 2.0 * float(np.real(self.beta.sum()))  # sum of all beta_k, = 1 to rounding


def _assemble(pairs, S1, c_sigma, c_one, bbar_sum):
    """Eq. (D5): ``test = 1 + sum beta beta c(Sigma) - 2 S1``;
    ``train = (1 - b)^2 + (2 - b) sum beta (1 - b_k) - sum beta beta lam_k c(1)``, ``b = sum beta``
    (the form that keeps an interpolating fit's ``train ~ 0`` free of cancellation).  Returns
    ``(train, test, S1)``: ``S1 = -(1/d) tr(B V^T)`` is also ``h beta`` of eq. (G2)."""
    b = pairs.total
    test = 1.0 + pairs.sum2(c_sigma) - 2.0 * S1
    train = (1.0 - b) ** 2 + (2.0 - b) * bbar_sum - pairs.sum2(c_one, weighted=True)
    return train, test, S1


def _resolvents(rule, A, B):
    return 1.0 / (A[..., None] * rule.s + B[..., None])


def minf_errors(rule, eqs, x, z, beta, setting):
    """``m = inf``: ``x = 1/(1 + delta)`` at ``z`` (both (n_t, P)); eqs. (D6)-(D7)."""
    psi_p, r = setting.psi_p, setting.psi_p / setting.psi_n
    cov = covariances(rule)
    T, C = cov["T"], cov["C"]
    pairs = _Pairs(rule, _resolvents(rule, *eqs._AB(x, z)), beta, -z)
    a = psi_p * pairs.one(T)  # tr(Q_k T)/d, (D6)
    xx = x[:, :, None] * _with_conjugates(x)[:, None, :]
    # (D7): tr(T Q_j M Q_k)/d = psi_p <T M q_j q_k>
    #                           + x_j x_k e(M) psi_p <T C q_j q_k>/(1 - x_j x_k f)
    gain = xx * r * psi_p * pairs.two(P.polymul(T, C)) / (1.0 - xx * r * pairs.two(P.polymul(C, C)))

    def c(M):
        return psi_p * pairs.two(P.polymul(T, M)) + gain * pairs.two(P.polymul(C, M))

    S1 = pairs.sum1(a)
    # U Q_k = 1 - lam_k Q_k: here tr(K R_k K^T)/d is tr(Q_k T)/d, so 1 - b_k = 1 - a_k
    return _assemble(pairs, S1, c(cov["Sigma"]), c(cov["1"]), pairs.total - S1)


def finite_m_errors(rule, eqs, om, z, beta, setting):
    """Finite ``m`` (``m = 1`` included): ``om`` (2, n_t, P), the unknowns of
    :class:`rfdsm.theory.stieltjes._FiniteM` (``omega``, or ``-z omega`` in the rescaled form
    (F5) above the interpolation threshold); eqs. (D8)-(D11)."""
    m, psi_p = int(setting.m), setting.psi_p
    rN, inv_n = setting.psi_p / (setting.psi_n * m), 1.0 / (setting.psi_n * m)
    cov = covariances(rule)
    C, Sc, T = cov["C"], cov["Sc"], cov["T"]
    alpha, theta, A, B = eqs._AB(om, z)
    c1 = eqs._c(z)[1]
    iota = 1.0 / (c1 + om[1])
    pairs = _Pairs(rule, _resolvents(rule, A, B), beta, -z)
    a = theta * psi_p * pairs.one(T)  # (D8): tr(K R_k V^T)/d
    bbar = c1 * (theta - theta * a)  # (D8): 1 - tr(K R_k K^T)/d
    both = lambda v: v[:, :, None] * _with_conjugates(v)[:, None, :]  # noqa: E731
    aa, ii, tt = both(alpha), both(iota), both(theta)
    two = lambda f, g: pairs.two(P.polymul(f, g))  # noqa: E731
    # (D10): L and E0 of the 2 x 2 system, the target source e~
    L00, L01, L11 = m * aa, aa, (aa + (m - 1) * ii) / m
    E00, E01, E11 = rN * two(C, C), rN * two(C, Sc), rN * two(Sc, Sc)
    e0 = rN * tt * two(C, T)
    e1 = rN * tt * two(Sc, T) + inv_n * (1.0 - a[:, :, None] - _with_conjugates(a)[:, None, :])
    v0, v1 = L00 * e0 + L01 * e1, L01 * e0 + L11 * e1
    M00, M01 = 1.0 - (L00 * E00 + L01 * E01), -(L00 * E01 + L01 * E11)
    M10, M11 = -(L01 * E00 + L11 * E01), 1.0 - (L01 * E01 + L11 * E11)
    det = M00 * M11 - M01 * M10
    y0, y1 = (M11 * v0 - M01 * v1) / det, (M00 * v1 - M10 * v0) / det

    def c(Psi):  # (D11): tr(Psi R_k K^T K R_j)/d
        return psi_p * (tt * two(Psi, T) + y0 * two(Psi, C) + y1 * two(Psi, Sc))

    return _assemble(pairs, pairs.sum1(a), c(cov["Sigma"]), c(cov["1"]), pairs.sum1(bbar))
