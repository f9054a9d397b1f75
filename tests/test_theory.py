"""Asymptotic solver (m = 1 and m = inf): limits, identities, closed forms, simulation.

The identity ``test = h score + a^2`` (docs/model.md) is not tested here: the solvers compute ``score``
from ``test`` by eq. (T5) of docs/theory.md, so it holds by construction.  It is checked on the
simulator's independent Monte Carlo estimates (tests/test_simulate.py).
"""

import math
import warnings

import numpy as np
import pytest
from scipy import integrate

import rfdsm
from rfdsm import Setting
from rfdsm.theory import solver_for, theory, theory_curve
from rfdsm.theory.common import ge_constants
from rfdsm.analysis.validate import summarize, validation_table

INF = math.inf
MS = (1, INF)


def mp_expect(f, gamma):
    """int f dMP_gamma by adaptive quadrature (independent of rfdsm.theory.spectral)."""
    lo, hi = (1 - math.sqrt(gamma)) ** 2, (1 + math.sqrt(gamma)) ** 2
    dens = lambda s: math.sqrt(max((hi - s) * (s - lo), 0.0)) / (2 * math.pi * gamma * s)  # noqa: E731
    val, _ = integrate.quad(lambda s: f(s) * dens(s), lo, hi, epsabs=1e-13, epsrel=1e-12, limit=200)
    return val + max(0.0, 1 - 1 / gamma) * f(0.0)


def population_ridge(setting):
    """Errors of B = -V (Sigma + lam)^{-1}, the n = inf ridge fit (docs/theory.md, eq. (T18))."""
    k = ge_constants(setting)
    m1 = k.mu1 ** 2
    Sig = lambda s: m1 * s + k.mu_star2  # noqa: E731
    T = lambda s: m1 * setting.h * s  # noqa: E731
    lam = setting.lam
    return 1 - setting.psi_p * mp_expect(lambda s: T(s) * (Sig(s) + 2 * lam) / (Sig(s) + lam) ** 2,
                                         setting.psi_p)


# ---------------------------------------------------------------- record and identities
@pytest.mark.parametrize("m", MS)
def test_result_record(m):
    s = Setting(2, 3, m=m, t=0.3, lam=0.05, activation="erf")
    r = theory(s)
    assert r.evaluator == "theory" and r.setting == s
    assert r.d is None and r.n is None and r.p is None and r.test_se is None
    assert r.converged and r.residual < 1e-10 and r.iterations >= 1
    assert r.diagnostics["quadrature_error"] < 1e-9
    assert theory(s).test == r.test  # deterministic


@pytest.mark.parametrize("m", MS)
@pytest.mark.parametrize("act", ["tanh", "relu", "erf", "linear"])
@pytest.mark.parametrize("pp", [0.3, 1.0, 5.0])
def test_bayes_bound(m, act, pp):
    s = Setting(1.5, pp, m=m, t=0.7, lam=0.02, activation=act)
    r = theory(s)
    assert r.converged
    assert r.test >= s.bayes - 1e-12  # a^2 is the best possible test error


def test_ge_constants_split():
    for act in ("tanh", "relu", "erf"):
        for t in (0.05, 0.5, 2.0):
            k = ge_constants(Setting(1, 1, t=t, activation=act))
            assert 0 < k.kappa_s2 < k.mu_star2 and k.kappa_i2 > 0
            assert k.kappa_s2 + k.kappa_i2 == pytest.approx(k.mu_star2, rel=1e-14)
    # odd activation: kappa_s^2 = sum_{k>=3 odd} a^{2k} mu_k^2/k!; to leading order a^6 mu_3^2/6
    s = Setting(1, 1, t=3.0, activation="tanh")
    k = ge_constants(s)
    mu3 = integrate.quad(lambda g: math.tanh(g) * (g**3 - 3 * g) * math.exp(-g * g / 2)
                         / math.sqrt(2 * math.pi), -12, 12)[0]
    assert k.kappa_s2 == pytest.approx(s.a**6 * mu3**2 / 6, rel=1e-3)
    lin = ge_constants(Setting(1, 1, activation="linear"))
    assert lin.mu_star2 == 0 and lin.kappa_s2 == 0 and lin.kappa_i2 == 0


# ---------------------------------------------------------------- limits
@pytest.mark.parametrize("m", MS)
@pytest.mark.parametrize("pp", [0.5, 4.0])
def test_large_ridge_gives_zero_fit(m, pp):
    r = theory(Setting(2, pp, m=m, lam=1e9))
    assert r.train == pytest.approx(1, abs=1e-7) and r.test == pytest.approx(1, abs=1e-7)


@pytest.mark.parametrize("m", (1, 4, INF))
@pytest.mark.parametrize("lam", (1e6, 1e100, 1e300))
def test_huge_ridge_expansion(m, lam):
    """lam -> inf: B = -K/lam + O(lam^-2), K the empirical cross-moment, so to first order

        test  = 1 - 2 psi_p mu1^2 h / lam,
        train = 1 - 2 psi_p [mu1^2 h + (mu1^2 + mu_star^2)/(m psi_n)] / lam

    (tr(V V^T)/d = psi_p mu1^2 h; the diagonal of |K|^2 adds tr(Sigma)/(N d) =
    psi_p <Sigma>/(m psi_n)), with remainders O(lam^-2) (measured 3e-12 at lam = 1e6).  Up to
    lam = 1e300 no intermediate may overflow (no warnings) and the solve must converge.
    """
    s = Setting(2, 4, m=m, lam=lam)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = theory(s)
    assert r.converged
    k = ge_constants(s)
    lead = 2 * s.psi_p * k.mu1**2 * s.h / lam
    extra = 2 * s.psi_p * (k.mu1**2 + k.mu_star2) / (m * s.psi_n) / lam
    assert r.test == pytest.approx(1 - lead, abs=1e-9)
    assert r.train == pytest.approx(1 - lead - extra, abs=1e-9)
    if lam >= 1e100:
        assert abs(r.train - 1) <= 1e-9 and abs(r.test - 1) <= 1e-9


@pytest.mark.parametrize("m", MS)
def test_few_features_give_zero_fit(m):
    r = theory(Setting(2, 1e-8, m=m, lam=0.01))
    assert r.train == pytest.approx(1, abs=1e-6) and r.test == pytest.approx(1, abs=1e-6)


@pytest.mark.parametrize("act", ["tanh", "relu"])
@pytest.mark.parametrize("pp", [0.5, 3.0])
def test_infinite_data_population_ridge(act, pp):
    s = Setting(1e7, pp, t=0.2, lam=0.05, activation=act)
    ref = population_ridge(s)
    for m in MS:
        r = theory(s.replace(m=m))
        # the finite-sample corrections are O(psi_p/psi_n) = O(1e-7)
        assert r.test == pytest.approx(ref, abs=1e-5)
        assert r.train == pytest.approx(ref, abs=1e-5)


# ---------------------------------------------------------------- linear activation (closed forms)
@pytest.mark.parametrize("pn", [1.5, 3.0])
def test_linear_m1_least_squares(pn):
    # psi_p > 1: the features span R^d, the ridgeless fit is least squares of eps on y with
    # noise variance a^2 (eps = sqrt(h) y + a xi): test = a^2/(1 - 1/psi_n), train = a^2(1 - 1/psi_n).
    s = Setting(pn, 2.5, m=1, t=0.1, lam=0, activation="linear")
    r = theory(s)
    assert r.test == pytest.approx(s.bayes / (1 - 1 / pn), rel=1e-9)
    assert r.train == pytest.approx(s.bayes * (1 - 1 / pn), rel=1e-9)


def test_linear_m1_min_norm_wide_features():
    # psi_p -> inf: the feature-space minimum norm becomes the isotropic one, whose risk
    # (Hastie, Montanari, Rosset & Tibshirani 2022) is a^2 + h (1 - psi_n) + a^2 psi_n/(1 - psi_n).
    pn = 0.5
    s = Setting(pn, 1e4, m=1, t=0.1, lam=0, activation="linear")
    ref = s.bayes + s.h * (1 - pn) + s.bayes * pn / (1 - pn)
    assert theory(s).test == pytest.approx(ref, rel=1e-3)
    assert theory(s.replace(psi_p=2.5)).test > ref + 0.1  # anisotropic implicit bias at finite psi_p


@pytest.mark.parametrize("pn", [0.5, 2.0])
@pytest.mark.parametrize("pp", [1.5, 4.0])
def test_linear_minf_mp_stieltjes(pn, pp):
    # psi_p > 1, lam = 0: the fit is -sqrt(h) (a^2 X X^T/n + h)^{-1} y in data space, so
    # train = 1 - h g/a^2 and test = 1 - 2 h g/a^2 - h g'/a^4, with g(mu) the MP Stieltjes
    # transform of ratio c = 1/psi_n at -mu, mu = h/a^2 (independent of psi_p).
    s = Setting(pn, pp, m=INF, t=0.2, lam=0, activation="linear")
    a2, h, c = s.bayes, s.h, 1 / pn

    def g(mu):
        b = 1 - c + mu
        return (-b + np.sqrt(b * b + 4 * c * mu)) / (2 * c * mu)

    mu = h / a2
    dg = (g(mu + 1e-30j)).imag / 1e-30  # complex step: exact derivative
    r = theory(s)
    assert r.train == pytest.approx(1 - h * g(mu).real / a2, rel=1e-9)
    assert r.test == pytest.approx(1 - 2 * h * g(mu).real / a2 - h * dg / a2**2, rel=1e-9)


# ---------------------------------------------------------------- quadrature near psi_p = 1
# Close to psi_p = 1 the MP density has a feature of width ~|1 - sqrt(psi_p)| at s = 0 that a
# plain midpoint rule in the angle misses (relative errors ~1e-3 at 400 nodes); the rule's edge
# correction (rfdsm/theory/spectral.py) makes it exact for polynomials and uniformly accurate.
NEAR_ONE = (0.9996, 0.999, 1.0, 1.0004, 1.001)


def mp_moment(k, gamma):
    """E s^k under MP_gamma: the Narayana polynomial sum_j N(k, j) gamma^(j-1)."""
    if k == 0:
        return 1.0
    return sum(math.comb(k, j) * math.comb(k, j - 1) / k * gamma ** (j - 1) for j in range(1, k + 1))


def mp_stieltjes(gamma, kappa):
    """int dMP_gamma(s)/(s + kappa), kappa > 0, in closed form (the root of
    gamma z g^2 + (z - 1 + gamma) g + 1 = 0 at z = -kappa that is positive)."""
    b = kappa + 1 - gamma
    return (math.sqrt(b * b + 4 * gamma * kappa) - b) / (2 * gamma * kappa)


@pytest.mark.parametrize("gamma", NEAR_ONE + (1 - 1e-8, 1 + 1e-8, 0.5, 3.0))
def test_mp_rule_exact_near_one(gamma):
    from rfdsm.theory.spectral import mp_parts, mp_rule

    for nodes in (100, 400):
        s, w = mp_rule(gamma, nodes)
        for k in range(0, 9):  # exact for k < nodes: rounding only
            assert np.dot(w, s ** k) == pytest.approx(mp_moment(k, gamma), rel=1e-13, abs=1e-15)
    s, w = mp_rule(gamma)
    for kappa in (1.0, 0.1):  # analytic, not polynomial: geometric convergence, 400 nodes
        assert np.dot(w, 1 / (s + kappa)) == pytest.approx(mp_stieltjes(gamma, kappa), rel=1e-12)
    # the atom is exactly 1 - 1/gamma and comes first; the edge correction is kept apart from it
    parts = mp_parts(gamma)
    assert parts.atom == max(0.0, 1 - 1 / gamma)
    assert parts.atom + parts.edge + parts.w.sum() == pytest.approx(1.0, abs=1e-14)
    assert np.all(parts.s > 0)
    if gamma > 1:
        assert s[0] == 0 and w[0] == parts.atom and w[1] == parts.edge


def test_mp_rule_bad_input():
    from rfdsm.theory.spectral import mp_rule

    for g in (0.0, -1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="gamma"):
            mp_rule(g)
    with pytest.raises(ValueError, match="nodes"):
        mp_rule(1.0, 0)


def cubic_through(xs, ys, x):
    return float(np.polyval(np.polyfit(xs, ys, 3), x))


@pytest.mark.parametrize("m", MS + (4,))  # the rule is shared by all solvers, finite m included
@pytest.mark.parametrize("kw", [dict(psi_n=2, t=0.2, lam=1e-3, activation="tanh"),
                                dict(psi_n=0.5, t=0.5, lam=0.0, activation="relu"),
                                dict(psi_n=2, t=0.2, lam=1e-2, activation="linear"),
                                dict(psi_n=0.5, t=0.2, lam=0.0, activation="linear")])
def test_converged_and_continuous_across_psi_p_one(m, kw):
    """Converged at and near psi_p = 1, on the curve through neighbours 0.005-0.015 away.

    For a nonlinear activation the errors are analytic in psi_p (every integrand is analytic
    at s = 0, where the MP atom appears), so the cubic through psi_p = 0.99, 0.995, 1.005, 1.01
    predicts the values in between to its interpolation error (measured <= 3e-8).  For the
    linear activation the atom directions carry no features, so the errors have a kink at
    psi_p = 1; each side is extrapolated from its own neighbours, psi_p = 1 included.
    Tolerance 2e-7 absolute; a midpoint rule without the edge correction is off by 3e-6 here
    even after refinement to 12800 nodes (and then flags converged=False).
    """
    def errs(pp):
        r = theory(Setting(psi_p=pp, m=m, **kw))
        assert r.converged, (pp, r.residual)
        assert r.diagnostics["quadrature_error"] <= 1e-9
        return np.array([r.train, r.test])

    if kw["activation"] == "linear":
        left, right = (0.985, 0.99, 0.995, 1.0), (1.0, 1.005, 1.01, 1.015)
    else:
        left = right = (0.99, 0.995, 1.005, 1.01)
    ref = {x: errs(x) for x in set(left + right)}
    for pp in NEAR_ONE:
        xs = left if pp <= 1 else right
        got = errs(pp)
        for q in (0, 1):
            pred = cubic_through(xs, [ref[x][q] for x in xs], pp)
            assert got[q] == pytest.approx(pred, abs=2e-7), (pp, q)


@pytest.mark.parametrize("pp", [1.0004, 1.001])
def test_linear_closed_forms_just_above_psi_p_one(pp):
    # the closed forms of test_linear_m1_least_squares and test_linear_minf_mp_stieltjes hold
    # for every psi_p > 1: there the atom (s = 0 exactly, no features, 0/0 := 0) and the edge
    # correction (continuous part, limit s -> 0+) must not be confused
    pn = 1.5
    s = Setting(pn, pp, m=1, t=0.1, lam=0, activation="linear")
    r = theory(s)
    assert r.converged
    assert r.test == pytest.approx(s.bayes / (1 - 1 / pn), rel=1e-9)
    assert r.train == pytest.approx(s.bayes * (1 - 1 / pn), rel=1e-9)
    s = Setting(pn, pp, m=INF, t=0.2, lam=0, activation="linear")
    far = theory(s.replace(psi_p=4.0))  # the m = inf fit does not depend on psi_p > 1
    r = theory(s)
    assert r.converged
    assert r.test == pytest.approx(far.test, rel=1e-9)
    assert r.train == pytest.approx(far.train, rel=1e-9)


# ---------------------------------------------------------------- ridgeless limit
def test_ridgeless_threshold_m1_diverges():
    r = theory(Setting(2, 2, m=1, lam=0))
    assert r.converged and r.test == INF and r.score == INF and r.diagnostics["divergent"]
    assert r.train == 0.0


@pytest.mark.parametrize("m", MS)
@pytest.mark.parametrize("pp", [0.7, 4.0])
def test_ridgeless_is_limit_of_small_ridge(m, pp):
    s = Setting(2, pp, m=m, lam=0)
    r0, r1 = theory(s), theory(s.replace(lam=1e-9))
    assert r0.converged and r1.converged
    assert r1.test == pytest.approx(r0.test, rel=1e-6)
    assert r1.train == pytest.approx(r0.train, rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("pn", [0.5, 2.0])
def test_m1_ridgeless_curve_just_above_threshold(pn):
    # kappa -> 0+ as psi_p -> psi_n+ and g'(kappa) = 1 - df2/n -> 0: Newton's relative steps at
    # the root are rounding of g amplified by 1/g' and can exceed tol forever; the solve must
    # recognise g at its rounding floor instead of reporting non-convergence (up to 8 of these
    # 41 points were flagged before).  Cold solves agree to the conditioning of the root.
    pps = pn * (1 + np.geomspace(1e-2, 1e-6, 41))
    curve = theory_curve([Setting(pn, pp, m=1, lam=0) for pp in pps])
    for r in curve:
        assert r.converged and r.diagnostics["kappa"] > 0, (r.setting.psi_p, r.residual)
        assert r.test == pytest.approx(theory(r.setting).test, rel=1e-8)


def test_m1_ridgeless_overparameterised_interpolates():
    r = theory(Setting(2, 4, m=1, lam=0))
    assert r.train == 0.0 and r.diagnostics["kappa"] > 0


# ---------------------------------------------------------------- robustness
@pytest.mark.parametrize("m", MS)
def test_non_convergence_is_reported(m):
    # no Newton step allowed: the starting point is returned, flagged, with its residual.  (With
    # max_iter = 1 the warm start carried through the quadrature refinements adds up to six
    # Newton steps, which may well converge.)
    r = theory(Setting(2, 3, m=m, lam=1e-4), max_iter=0)
    assert not r.converged and r.residual > 1e-9 and "warning" in r.diagnostics
    assert math.isfinite(r.test) and math.isfinite(r.train)


def test_bad_input():
    with pytest.raises(ValueError, match="setting"):
        theory({"psi_n": 1})
    with pytest.raises(ValueError, match="settings"):
        theory_curve([Setting(1, 1), 3])


def test_dispatch():
    from rfdsm.theory.finite_m import solve_finite_m
    from rfdsm.theory.m1 import solve_m1
    from rfdsm.theory.minf import solve_minf

    assert solver_for(Setting(2, 3, m=1)) is solve_m1
    assert solver_for(Setting(2, 3, m=INF)) is solve_minf
    assert solver_for(Setting(2, 3, m=3)) is solve_finite_m
    r = theory(Setting(2, 3, m=3))
    assert r.evaluator == "theory" and r.converged


@pytest.mark.parametrize("m", MS)
def test_curve_matches_pointwise(m):
    settings = [Setting(2, pp, m=m, t=0.2, lam=1e-3) for pp in np.geomspace(0.1, 10, 40)]
    curve = theory_curve(settings)
    for s, r in zip(settings, curve):
        p = theory(s)
        assert r.converged
        assert r.test == pytest.approx(p.test, rel=1e-9) and r.train == pytest.approx(p.train, rel=1e-9)


def test_warm_start_from_far_point():
    s = Setting(1, 5, m=INF, lam=1e-3)
    far = theory(Setting(10, 0.1, m=INF))
    assert theory(s, warm=far).test == pytest.approx(theory(s).test, rel=1e-10)
    s1 = s.replace(m=1)
    assert theory(s1, warm=theory(Setting(10, 0.1))).test == pytest.approx(theory(s1).test, rel=1e-10)


def test_cli_theory_json(capsys):
    import json

    from rfdsm.cli import main

    rc = main(["theory", "--psi-n", "2", "--psi-p", "4", "--m", "inf", "--t", "0.1", "--lam",
               "0.01", "--activation", "tanh", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["converged"] is True
    assert out["test"] == pytest.approx(theory(Setting(2, 4, m=INF)).test)


# ---------------------------------------------------------------- against the simulator
# The check of `rfdsm validate` (docs/validation.md): the seed means at three sizes are fitted
# to c0 + c1/d (weighted by their standard errors), and the intercept c0 must equal the theory
# within its Bonferroni-corrected Student-t interval (plus a 1e-4 relative floor), with a
# residual test of the 1/d law.  No constant is calibrated on these settings.  Sizes are
# multiples of 16 so that n = psi_n d and p = psi_p d are integers.
SIM_CASES = [(m, pn, pp) for m in MS for pn, pp in ((2.0, 0.5), (1.5, 3.0))]
SIM_SIZES = (48, 80, 128)


def _limit_failures(settings, ds, n_seeds, seed):
    wide, _ = summarize(validation_table(settings, ds=ds, n_seeds=n_seeds, seed=seed))
    bad = wide[~wide["ok"]]
    return bad[["m", "psi_n", "psi_p", "activation", "quantity", "theory", "intercept", "se",
                "reason"]].to_string() if len(bad) else ""


def test_theory_matches_simulation():
    settings = [Setting(pn, pp, m=m, t=0.1, lam=0.01, activation="tanh")
                for m, pn, pp in SIM_CASES]
    assert _limit_failures(settings, SIM_SIZES, 3, 11) == ""


# ---------------------------------------------------------------- Mei & Montanari (2019)
def mei_montanari_risk(mu1, mu_star, psi1, psi2, lam, F1sq, tau2):
    """Their Theorem 1 (random-features ridge regression, linear teacher of norm F1, noise tau^2,
    F_star = 0): R = F1^2 E1/E0 + tau^2 E2/E0 at chi = nu1 nu2, nu_{1,2} evaluated at
    xi = i sqrt(psi1 psi2 lam/mu_star^2).  Written from the paper's formulas."""
    z2 = (mu1 / mu_star) ** 2
    xi = 1j * math.sqrt(psi1 * psi2 * lam / mu_star**2)
    n1 = n2 = 1j
    for _ in range(200000):
        den = 1 - z2 * n1 * n2
        a1 = psi1 / (-xi - n2 - z2 * n2 / den)
        a2 = psi2 / (-xi - n1 - z2 * n1 / den)
        err = abs(a1 - n1) + abs(a2 - n2)
        n1, n2 = (n1 + a1) / 2, (n2 + a2) / 2  # damped: the plain iteration can oscillate
        if err < 1e-14:
            break
    assert err < 1e-12
    c, z4, z6, p1, p2 = n1 * n2, z2 * z2, z2**3, psi1, psi2
    E0 = (-c**5 * z6 + 3 * c**4 * z4 + (p1 * p2 - p2 - p1 + 1) * c**3 * z6 - 2 * c**3 * z4
          - 3 * c**3 * z2 + (p1 + p2 - 3 * p1 * p2 + 1) * c**2 * z4 + 2 * c**2 * z2 + c**2
          + 3 * p1 * p2 * c * z2 - p1 * p2)
    E1 = p2 * c**3 * z4 - p2 * c**2 * z2 + p1 * p2 * c * z2 - p1 * p2
    E2 = (c**5 * z6 - 3 * c**4 * z4 + (p1 - 1) * c**3 * z6 + 2 * c**3 * z4 + 3 * c**3 * z2
          - (p1 + 1) * c**2 * z4 - 2 * c**2 * z2 - c**2)
    return (F1sq * E1 / E0 + tau2 * E2 / E0).real


@pytest.mark.parametrize("act", ["tanh", "relu"])
@pytest.mark.parametrize("pn,pp,t,lam", [(2, 0.5, 0.1, 0.01), (2, 4, 0.1, 0.01), (1, 3, 1.0, 0.1)])
def test_m1_agrees_with_mei_montanari(act, pn, pp, t, lam):
    # docs/model.md: target eps/sqrt(h) = y + label noise of variance a^2/h; their psi_1 = psi_p,
    # psi_2 = psi_n, ridge lam/psi_p; their excess risk R is then exactly our score error.
    s = Setting(pn, pp, m=1, t=t, lam=lam, activation=act)
    _, mu1, mu_star = s.sigma.coefficients
    ref = mei_montanari_risk(mu1, mu_star, pp, pn, lam / pp, 1.0, s.bayes / s.h)
    assert theory(s).score == pytest.approx(ref, rel=1e-9)


def _softplus_pair():
    """softplus (mu0 ~ 0.81) and its centred version, registered for these tests."""
    sp = rfdsm.register_activation("softplus_uncentred_test", lambda x: np.logaddexp(0.0, x),
                                   overwrite=True)
    mu0 = sp.coefficients[0]
    rfdsm.register_activation("softplus_centred_test", lambda x: np.logaddexp(0.0, x) - mu0,
                              overwrite=True)
    return "softplus_uncentred_test", "softplus_centred_test", mu0


def test_reregistered_activation_is_not_served_from_a_stale_cache():
    rfdsm.register_activation("reregistered_test", np.tanh, overwrite=True)
    s = Setting(2, 1, m=math.inf, t=0.1, lam=0.01, activation="reregistered_test")
    first = theory(s)
    rfdsm.register_activation("reregistered_test", lambda x: np.tanh(x) ** 3, overwrite=True)
    # a setting built after the re-registration sees the new function ...
    second = theory(s.replace(activation="reregistered_test"))
    rfdsm.register_activation("reregistered_other_test", lambda x: np.tanh(x) ** 3, overwrite=True)
    ref = theory(s.replace(activation="reregistered_other_test"))
    assert second.test == pytest.approx(ref.test, rel=1e-12)
    assert abs(second.test - first.test) > 1e-3
    # ... and the earlier one keeps the function it was built with (rfdsm.Setting)
    assert theory(s).test == first.test


@pytest.mark.parametrize("m", [1, 4, math.inf])
@pytest.mark.parametrize("psi_p", [0.5, 4.0])
def test_uncentred_activation_has_the_centred_limit(m, psi_p):
    # docs/theory.md, Sec. 0: the equations see mu0 only through kappa_s^2 (T2), which
    # subtracts it, so sigma and sigma - mu0 must give the same numbers to solver precision.
    unc, cen, mu0 = _softplus_pair()
    assert mu0 > 0.5
    s = Setting(2, psi_p, m=m, t=0.1, lam=0.01, activation=unc)
    a, b = theory(s), theory(s.replace(activation=cen))
    assert a.converged and b.converged
    for q in ("train", "test", "score"):
        assert getattr(a, q) == pytest.approx(getattr(b, q), rel=1e-10)


def test_uncentred_activation_theory_vs_simulation():
    # The claim of Sec. 0 (the mean feature does not change the limit) checked against the
    # exact simulator of the non-centred activation: the d -> inf extrapolation of
    # `rfdsm validate` at three sizes.
    unc, _, _ = _softplus_pair()
    settings = [Setting(2, psi_p, m=m, t=0.1, lam=0.01, activation=unc)
                for m in (1, math.inf) for psi_p in (0.5, 4.0)]
    assert all(theory(s).converged for s in settings)
    assert _limit_failures(settings, SIM_SIZES, 3, 0) == ""
