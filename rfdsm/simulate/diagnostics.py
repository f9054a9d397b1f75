"""Exact finite-``d`` diagnostics of a fitted score: test_emp, beta, bias2, variance.

Definitions: ``docs/model.md``, "Empirical test loss, bias and variance"; derivation and
quadratures: ``docs/theory.md``, Sec. 11.3.  Notation of ``rfdsm.simulate.fit``: ``B = -K^T``
(d x p), ``sqrt(h) s_A(y) = B phi(y)``, ``w_i`` the rows of ``W``.

* ``test_emp = 1 + [tr(B U_n B^T) + 2 tr(B V_n^T)] / d`` with ``(U_n, V_n)`` the exact noise
  averages on the ``n`` training points (the ``m = inf`` training moments, Mehler series and
  Stein's lemma), for the ``B`` of any ``m``; at ``m = inf`` these are the training moments and
  ``test_emp = train``.
* Rotation invariance makes the mean score radial, ``<s(y)> = -f(|y|) y``.  For one seed the
  radial part of ``s`` is ``-g(|y|) y`` with

      g(r) = -E[y.s(y) | |y| = r] / r^2 = -(1/(r sqrt h)) sum_i (b_i . w_i/|w_i|) J(r |w_i|/sqrt d),
      J(c) = E[u sigma(c u)],  u the first coordinate of a uniform point of S^{d-1}          (G9)

  (``E[omega | u_i] = u_i w_i/|w_i|``), so that ``f = E_seed g``.  With ``(1/d) E[|y|^2 F(|y|)] =
  E_{x ~ chi2_{d+2}} F(sqrt x)`` (written ``E'`` below):

      beta     = E' g             = -(1/(h d)) tr(B V_pop^T)           (exact, Stein)
      bias2    = E' (1 - g)^2     (the seed's own radial bias)
      variance = (1/d) E|s|^2 - E' g^2 = score - bias2      (the energy off the radial fields)

  The seed mean of ``bias2`` exceeds the bias of the mean score by the seed-to-seed variance
  of ``g``; :func:`rfdsm.diagnostics.bias_variance` removes it exactly (a U-statistic over
  pairs of seeds, from the profiles stored in ``diagnostics["radial_profile"]``).

Quadratures: ``x`` by Gauss (generalised) Laguerre for ``chi2_{d+2}``, ``u`` by Gauss-Gegenbauer
for the weight ``(1 - u^2)^{(d-3)/2}`` (closed forms ``J(c) = c/(2d)`` for the centred ReLU,
``c/d`` for the linear activation; composite Gauss-Legendre split at declared kinks for a
user activation); both orders are doubled until the profile is stable and ``E' g`` equals the
Stein value of ``beta`` to ``PROFILE_TOL``.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from ..activations import QuadratureError
from ..metrics import implement
from ..metrics.diagnostics import DIAGNOSTICS

__all__ = ["test_emp", "beta", "bias2", "variance", "radial", "chi2_rule", "sphere_rule",
           "PROFILE_TOL", "N_R"]

#: The profile's quadratures are accepted when ``E' g`` agrees with the exact ``beta`` and
#: the profile with that of twice the ``u`` nodes to this (relative to ``1 + |beta|``).
PROFILE_TOL = 1e-11
#: Nodes of the ``chi2_{d+2}`` rule in ``x = |y|^2`` (fixed, so that profiles of different
#: seeds at one ``d`` live on the same nodes and can be combined); 48 integrate the smooth,
#: slowly varying profile to round-off for every ``d`` checked (16 to 1600).
N_R = 48
_U_ORDERS = (64, 128, 256, 512, 1024, 2048)


@lru_cache(maxsize=64)
def _gauss_rule(kind: str, par: float, nodes: int):
    """Nodes and normalised weights of a Gauss rule from its Jacobi matrix (Golub-Welsch): the
    nodes are the eigenvalues, the weight of a node ``1/sum_k p_k(x)^2`` with ``p_k`` the
    orthonormal polynomials of the three-term recurrence (no eigenvectors needed)."""
    from scipy.linalg import eigh_tridiagonal

    k = np.arange(nodes, dtype=float)
    if kind == "laguerre":  # weight t^par e^{-t}
        diag, off = 2.0 * k + par + 1.0, np.sqrt(k[1:] * (k[1:] + par))
    else:  # Gegenbauer par = lam: weight (1 - u^2)^(lam - 1/2)
        j = k[1:]
        diag = np.zeros(nodes)
        off = np.sqrt(j * (j + 2 * par - 1) / (4 * (j + par) * (j + par - 1)))
    x = eigh_tridiagonal(diag, off, eigvals_only=True)
    p_prev, p = np.zeros_like(x), np.ones_like(x)
    total = np.ones_like(x)
    for i in range(nodes - 1):
        b_prev = off[i - 1] if i > 0 else 0.0
        p_prev, p = p, ((x - diag[i]) * p - b_prev * p_prev) / off[i]
        total += p * p
    w = 1.0 / total
    return x, w / w.sum()


def chi2_rule(d: int, nodes: int = N_R):
    """Gauss rule for ``x ~ chi2_{d+2}``: ``x = 2 t``, ``t ~ Gamma(d/2 + 1)`` (generalised
    Laguerre weight ``t^{d/2} e^{-t}``)."""
    t, w = _gauss_rule("laguerre", d / 2.0, int(nodes))
    return 2.0 * t, w


def sphere_rule(d: int, nodes: int):
    """Gauss rule for ``u``, the first coordinate of a uniform point of ``S^{d-1}``: weight
    ``(1 - u^2)^{(d-3)/2}`` (Gegenbauer ``lam = (d-2)/2``; recurrence
    ``beta_k = k(k + 2 lam - 1)/(4 (k + lam)(k + lam - 1))``, so ``E u^2 = beta_1 = 1/d``)."""
    return _gauss_rule("gegenbauer", (d - 2) / 2.0, int(nodes))


def _J_nodes(act, c, d, nodes):
    """``J(c) = E[u sigma(c u)]`` at the points ``c`` (1-D) with a ``u`` rule of ``nodes``."""
    if act.kinks:
        return _J_kinked(act, c, d, nodes)
    u, w = sphere_rule(d, nodes)
    return (np.asarray(act(c[:, None] * u[None, :]), dtype=float) * u) @ w


def _J(act, c, d):
    """``J(c)`` on the array ``c``: closed forms for the centred ReLU and the linear
    activation; otherwise Chebyshev interpolation in ``c`` over the range of ``c`` (``J`` is a
    smooth function of one variable, and the range is narrow), its values at the Chebyshev
    points from the ``u`` rule, both orders doubled until stable to ``PROFILE_TOL``."""
    exact = _exact_J(act)
    if exact == "relu":  # centred ReLU: the odd part of max(x, 0) - const is x/2
        return c / (2.0 * d), 0
    if exact == "linear":
        return c / d, 0
    from numpy.polynomial import chebyshev as ch

    lo, hi = float(c.min()), float(c.max())
    if hi - lo <= 1e-12 * hi:
        lo, hi = lo * (1 - 1e-6), hi * (1 + 1e-6)
    scale = max(1.0, hi)
    prev_fit = None
    for deg in (16, 32, 64, 128):
        t = np.cos(np.pi * (np.arange(deg + 1) + 0.5) / (deg + 1))  # Chebyshev points
        cn = 0.5 * (hi + lo) + 0.5 * (hi - lo) * t
        prev_vals, used = None, None
        for nodes in _U_ORDERS:
            vals = _J_nodes(act, cn, d, nodes)
            if prev_vals is not None and np.abs(vals - prev_vals).max() <= 1e-15 * scale:
                used = nodes
                break
            prev_vals = vals
        if used is None:
            raise QuadratureError(f"E[u sigma(c u)] on S^{d - 1} did not converge for the "
                                  f"activation {act.name!r} with {_U_ORDERS[-1]} nodes in u")
        coef = ch.chebfit(t, vals, deg)
        x = (2.0 * c - (hi + lo)) / (hi - lo)
        cur = ch.chebval(x, coef)
        if prev_fit is not None and np.abs(cur - prev_fit).max() <= 1e-15 * scale:
            return cur, used
        prev_fit = cur
    raise QuadratureError(f"the Chebyshev interpolation of E[u sigma(c u)] did not converge for "
                          f"the activation {act.name!r} on c in [{lo:.4g}, {hi:.4g}]")


def _J_kinked(act, c, d, nodes):
    """Composite Gauss-Legendre in ``u`` on ``[-U, U]`` (beyond ``U`` the weight is below
    1e-30 of its peak), split where ``c u`` meets a declared kink."""
    from ..activations.gauss import _gauss_legendre
    from scipy.special import gammaln

    ex = (d - 3) / 2.0
    U = math.sqrt(-math.expm1(-69.0 / ex)) if ex > 0 else 1.0
    # normalisation of the density of u: Gamma(d/2) / (sqrt(pi) Gamma((d-1)/2))
    norm = math.exp(gammaln(d / 2.0) - gammaln((d - 1) / 2.0)) / math.sqrt(math.pi)
    x, wx = _gauss_legendre(nodes)
    flat = c.reshape(-1)
    kinks = np.asarray(act.kinks, dtype=float)
    with np.errstate(divide="ignore"):
        cuts = np.where(flat[:, None] != 0, kinks[None, :] / flat[:, None], 2.0 * U)
    cuts = np.sort(np.clip(cuts, -U, U), axis=1)
    edges = np.concatenate([np.full((flat.size, 1), -U), cuts, np.full((flat.size, 1), U)],
                           axis=1)
    out = np.zeros(flat.size)
    for lo, hi in zip(edges[:, :-1].T, edges[:, 1:].T):
        half = 0.5 * (hi - lo)
        u = (0.5 * (hi + lo))[:, None] + half[:, None] * x[None, :]
        dens = norm * np.power(np.maximum(1.0 - u * u, 0.0), ex) if ex != 0 else norm
        vals = np.asarray(act(flat[:, None] * u), dtype=float) * u * dens
        out += half * (vals @ wx)
    return out.reshape(c.shape)


def _profile(act, r, norms, kw, d, h):
    c = r[:, None] * norms[None, :] / math.sqrt(d)  # N_R x p
    J, nodes = _J(act, c, d)
    return -(J @ kw) / (r * math.sqrt(h)), nodes


def radial(fitted) -> dict:
    """The seed's radial profile ``g`` on the ``chi2_{d+2}`` nodes (eq. (G9)) and the numbers
    built from it, cached on ``fitted``: ``x, w, g, beta, bias2, energy`` (``(1/d) E|s|^2``),
    ``beta_stein`` and the quadrature checks."""
    cache = fitted.__dict__.get("_radial")
    if cache is not None:
        return cache
    setting = fitted.setting
    if not getattr(setting.data_model.law(), "is_isotropic", False):
        raise ValueError(f"bias2, variance and beta are defined for the isotropic target "
                         f"(rotation-invariant: the mean score is radial); the data model here "
                         f"is {setting.data_model.name!r}")
    d, h = fitted.d, fitted.h
    if d < 3:
        raise ValueError(f"bias2, variance and beta need d >= 3 (the radial quadrature), got "
                         f"d = {d}")
    ops = fitted.ops
    W = np.asarray(ops.to_host(fitted.W), dtype=float)
    K = np.asarray(ops.to_host(fitted.K), dtype=float)
    Vpop = np.asarray(ops.to_host(fitted.population.C), dtype=float)  # d x p
    Upop = np.asarray(ops.to_host(fitted.population.S), dtype=float)
    norms = np.sqrt(np.einsum("id,id->i", W, W))
    kw = -np.einsum("id,id->i", K, W) / norms  # b_i . w_i/|w_i|
    beta_stein = float(np.sum(K * Vpop.T)) / (h * d)  # -(1/(h d)) tr(B V_pop^T), B = -K^T
    energy = float(np.sum(K * (Upop @ K))) / (h * d)  # (1/d) E|s(y)|^2
    x, w = chi2_rule(d)
    r = np.sqrt(x)
    act = fitted.activation
    scale = 1.0 + abs(beta_stein)
    g, nodes = _profile(act, r, norms, kw, d, h)
    beta_r = float(w @ g)
    mismatch = abs(beta_r - beta_stein) / scale
    if mismatch > PROFILE_TOL:
        raise QuadratureError(
            f"the radial profile of the fitted score did not converge at d = {d} (activation "
            f"{act.name!r}: E' g - beta = {beta_r - beta_stein:.3g} with {nodes} nodes in u)")
    cache = {"x": x, "w": w, "g": g, "beta": beta_stein, "beta_profile": beta_r,
             "bias2": float(w @ (1.0 - g) ** 2), "radial_energy": float(w @ (g * g)),
             "energy": energy, "u_nodes": nodes, "profile_mismatch": mismatch}
    fitted.__dict__["_radial"] = cache
    # the profile goes with the seed's diagnostics: the pooled bias of several seeds needs it
    fitted.info["radial_profile"] = [float(v) for v in g]
    fitted.info["radial_u_nodes"] = nodes
    fitted.info["radial_beta_mismatch"] = mismatch
    return cache


def _exact_J(act):
    """``"relu"`` or ``"linear"`` for those built-ins (closed forms of ``J``), else None."""
    from ..activations import _BUILTINS

    return act.name if act.name in ("relu", "linear") and _BUILTINS.get(act.name) is act else None


def beta(fitted) -> float:
    """``beta = -(1/d) E_y[y.s(y)] = -(1/(h d)) tr(B V_pop^T)`` (the mean score is ``-beta y`` to
    leading order)."""
    return radial(fitted)["beta"]


def bias2(fitted) -> float:
    """The seed's own radial bias ``E'(1 - g)^2`` (module docstring)."""
    return radial(fitted)["bias2"]


def variance(fitted) -> float:
    """``(1/d) E|s|^2 - E' g^2``: the score's energy off the radial fields; ``score - bias2``
    up to rounding (checked in the tests)."""
    c = radial(fitted)
    return c["energy"] - c["radial_energy"]


def test_emp(fitted) -> float:
    """``test_emp = 1 + [tr(B U_n B^T) + 2 tr(B V_n^T)]/d``, ``(U_n, V_n)`` the exact noise
    averages on the training points (``= train`` at ``m = inf``)."""
    from ..metrics import TRAIN_ROUNDOFF

    setting = fitted.setting
    if setting.m == math.inf:
        mom = fitted.train_moments
    else:
        mom = _noise_averaged(fitted)
    value = mom.noise_sq + fitted.quadratic(mom) / fitted.d
    if -TRAIN_ROUNDOFF <= value < 0.0:  # as the train error: round-off of an interpolating fit
        value = 0.0
    return float(value)


def _noise_averaged(fitted):
    """The ``m = inf`` moments of the training points, once per draw (a training-time curve
    fits many ``B`` on one draw)."""
    from . import fit as _fit

    setting, dr = fitted.setting, fitted.draw
    key = ("noise_averaged", setting.sigma.fingerprint, float(setting.t),
           str(fitted.info.get("dtype", "float64")), fitted.ops.name)
    cache = dr.__dict__.setdefault("_cache", {})
    mom = cache.get(key)
    if mom is None:
        ops = fitted.ops
        W = fitted.W
        dtype = np.dtype(fitted.info.get("dtype", "float64"))
        mom = _fit.noise_averaged_moments(setting.sigma, dr, setting.a, setting.h,
                                          _fit.DEFAULT_BLOCK_BYTES, ops.correlations(W), dtype,
                                          ops, W)
        cache[key] = mom
        fitted.info["test_emp_series_bound"] = mom.info["series_bound"]
    return mom


implement("simulate", {name: globals()[name] for name in DIAGNOSTICS})
