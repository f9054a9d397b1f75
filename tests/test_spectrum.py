"""The limiting spectrum of the training Gram (docs/theory.md, Sec. 9) against closed forms, the
ridge solvers on the real axis, and the eigenvalues of the simulator's own Gram."""

import math

import numpy as np
import pytest
from scipy import stats

from rfdsm import Setting
from rfdsm.simulate.spectrum import gram_eigenvalues, gram_moments
from rfdsm.theory.common import ge_spectrum
from rfdsm.theory.finite_m import solve_finite_m
from rfdsm.theory.m1 import solve_m1
from rfdsm.theory.minf import solve_minf
from rfdsm.theory.spectrum import atom_weights, closed_form_moments, spectrum, stieltjes

UNDER = dict(psi_n=2.0, psi_p=1.0)
OVER = dict(psi_n=0.5, psi_p=3.0)  # above p = N for m = 1 and 4, atom at kappa_i^2 for m = inf


@pytest.mark.parametrize("m", [1, 4, math.inf])
@pytest.mark.parametrize("shape", [UNDER, OVER], ids=["under", "over"])
def test_density_and_atoms_carry_the_mass_and_the_closed_form_moments(m, shape):
    s = Setting(m=m, **shape)
    r = spectrum(s)
    assert r.converged, r.message
    # (S6) rank counting and the limit (E0 - z) g(z) are independent ways to the atoms
    expected = atom_weights(s)
    assert len(r.atoms) == len(expected)
    for (loc, wt), (loc2, wt2) in zip(r.atoms, expected.items()):
        assert loc == pytest.approx(loc2, abs=1e-12) and wt == pytest.approx(wt2, abs=1e-7)
    assert r.mass + sum(w for _, w in r.atoms) == pytest.approx(1.0, abs=2e-6)
    for k, v in closed_form_moments(s).items():
        assert r.moments[k] == pytest.approx(v, rel=2e-6), k
    assert all(a < b for a, b in r.edges)


def _cubic_density(E, psi_n, psi_p):
    """Linear activation, m = 1: ``K = W (Y Y^T/n) W^T/d`` is a product of two Wishart matrices.
    With ``w = -1 - z g`` the S-transforms of the two Marchenko-Pastur laws give
    ``z w = (1 + w)(1 + psi_p w)(1 + (psi_p/psi_n) w)`` (free multiplicative convolution)."""
    a, b = psi_p, psi_p / psi_n
    out = []
    for e in E:
        roots = np.roots([a * b, a + b + a * b, 1.0 + a + b - e, 1.0])
        w = roots[np.argmin(roots.imag)]
        out.append(max(-w.imag / (math.pi * e), 0.0))
    return np.array(out)


@pytest.mark.parametrize("shape", [dict(psi_n=2.0, psi_p=0.5), dict(psi_n=2.0, psi_p=3.0),
                                   dict(psi_n=0.5, psi_p=3.0)])
def test_linear_m1_is_a_product_of_wisharts(shape):
    s = Setting(m=1, activation="linear", **shape)
    r = spectrum(s)
    assert r.converged, r.message
    E = np.linspace(1e-3, r.edges[-1][1] * 1.1, 400)
    density = spectrum(s, E=E).density  # the continuous part: the atom at 0 removed
    closed = _cubic_density(E, **shape)
    assert np.max(np.abs(density - closed)) <= 1e-6 * closed.max()
    # the atom at 0 has weight 1 - min(n, d)/p
    rank = min(shape["psi_n"], 1.0, shape["psi_p"]) / shape["psi_p"]
    assert sum(w for _, w in r.atoms) == pytest.approx(1.0 - rank, abs=1e-8)


def _g_from_solver(s):
    """``g(-lam) = (1/p) tr (K + lam)^{-1}`` from today's ridge solvers' fixed points."""
    sol = {1: solve_m1, math.inf: solve_minf}.get(s.m, solve_finite_m)(s)
    assert sol.converged
    sp = ge_spectrum(s, sol.diagnostics["nodes"])
    if s.m == 1:  # (T8): (K + lam)^{-1} ~ (kappa/lam) (Sigma + kappa)^{-1}
        kappa = sol.state
        return kappa / s.lam * float(np.dot(sp.w, 1.0 / (sp.Sigma + kappa)))
    if s.m == math.inf:  # (T13): D = x C + Sc + lam
        return float(np.dot(sp.w, 1.0 / (sol.state * sp.C + sp.Sc + s.lam)))
    branch, ws, wi = sol.state  # (F4), or (F5) rescaled by lam above the threshold
    c0, c1 = (1.0, s.lam) if branch == "above" else (s.lam, 1.0)
    alpha = 1.0 / (c1 + wi + s.m * ws)
    theta = (1.0 - ws * alpha) / (c1 + wi)
    g = float(np.dot(sp.w, 1.0 / (c0 + alpha * sp.C + theta * sp.Sc)))
    return g / s.lam if branch == "above" else g


@pytest.mark.parametrize("m", [1, 3, math.inf])
@pytest.mark.parametrize("shape", [UNDER, OVER], ids=["under", "over"])
@pytest.mark.parametrize("lam", [1e-3, 0.1])
def test_real_axis_limit_is_the_ridge_solvers_resolvent(m, shape, lam):
    s = Setting(m=m, lam=lam, **shape)
    g, ok = stieltjes(s, [-lam])
    assert ok.all()
    assert g[0].real == pytest.approx(_g_from_solver(s), rel=1e-9)


def _extrapolate(ds, means, ses):
    """Weighted least squares of ``mean_d = c0 + c1/d``: ``(c0, se(c0))``."""
    X = np.c_[np.ones(len(ds)), 1.0 / np.asarray(ds, dtype=float)]
    Wt = 1.0 / np.asarray(ses) ** 2
    cov = np.linalg.inv(X.T @ (X * Wt[:, None]))
    c = cov @ (X.T @ (Wt * np.asarray(means)))
    return float(c[0]), float(math.sqrt(cov[0, 0]))


SIM_SIZES = {40: 8, 80: 6, 160: 4}  # d: seeds


@pytest.mark.parametrize("m", [1, 4, math.inf])
@pytest.mark.parametrize("shape", [UNDER, OVER], ids=["under", "over"])
def test_moments_against_the_simulated_gram(m, shape):
    s = Setting(m=m, **shape)
    theory = spectrum(s).moments
    ds, means, ses = [], {k: [] for k in theory}, {k: [] for k in theory}
    for d, seeds in SIM_SIZES.items():
        mom = [gram_moments(gram_eigenvalues(s, d, seed)) for seed in range(seeds)]
        ds.append(d)
        for k in theory:
            vals = [x[k] for x in mom]
            means[k].append(np.mean(vals))
            ses[k].append(np.std(vals, ddof=1) / math.sqrt(seeds))
    # the limit of finite-d moments c0 + c1/d, at a Bonferroni level over the 18 cases x 3 moments
    z = stats.norm.ppf(1.0 - 0.01 / (2 * 54))
    wrong = closed_form_moments(s.replace(m=1 if m != 1 else math.inf))
    for k, v in theory.items():
        c0, se = _extrapolate(ds, means[k], ses[k])
        assert abs(c0 - v) <= z * se, (k, c0, se, v)
        if k == 2:  # the check has the power to tell m = 1 from m = inf
            assert abs(c0 - wrong[k]) > z * se


def test_cli_spectrum_prints_strict_json_and_refuses_bad_input(capsys):
    import json

    from rfdsm.cli import main

    rc = main(["spectrum", "--psi-n", "2", "--psi-p", "1", "--m", "1", "--d", "40", "--json"])
    out = json.loads(capsys.readouterr().out,
                     parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
    assert rc == 0 and out["converged"] is True
    assert set(out["simulated_moments"]) == {"1", "2", "3"} and out["edges"]
    assert main(["spectrum", "--psi-n", "-1", "--psi-p", "1"]) == 2
    assert "psi_n" in capsys.readouterr().err
