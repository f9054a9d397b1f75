"""``rfdsm spectrum`` and ``rfdsm simulate`` at the edges: the data law is read (not the model's
name), every call ends in bounded time with an honest status, sizes are refused before any
work, and long runs show progress on stderr only."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from rfdsm import Setting
from rfdsm.theory.common import ge_spectrum
from rfdsm.theory.spectrum import closed_form_moments, spectrum, stieltjes
from tests.test_spectrum import _extrapolate  # the weighted 1/d fit, written once

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _cli(*args, timeout=60):
    env = {**os.environ, "PYTHONPATH": ROOT}
    return subprocess.run([sys.executable, "-m", "rfdsm.cli", *args], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=ROOT)


# -- the data law: covariance spectra through the equations of Sec. 12 -------------------------

STRUCTURED = [dict(psi_d=0.25, m=1, psi_n=0.5, psi_p=3.0),
              dict(psi_d=0.25, m=4, psi_n=2.0, psi_p=1.0),
              dict(psi_d=0.5, m=math.inf, psi_n=0.5, psi_p=3.0),
              dict(data="spectrum(0.2:4,0.8:0.5)", m=1, psi_n=0.5, psi_p=3.0)]


@pytest.mark.parametrize("kw", STRUCTURED,
                         ids=lambda kw: f"{kw.get('data', kw.get('psi_d'))}-m{kw['m']}")
def test_structured_data_have_their_own_spectrum(kw):
    s = Setting(**kw)
    iso = Setting(**{k: v for k, v in kw.items() if k not in ("psi_d", "data")})
    r = spectrum(s)
    assert r.converged, r.message
    assert r.mass + sum(w for _, w in r.atoms) == pytest.approx(1.0, abs=2e-6)
    # tr K/p is the trace of the features' covariance: that of the data law, not of N(0, I)
    assert abs(r.moments[1] - spectrum(iso).moments[1]) > 1e-3
    for k, v in closed_form_moments(s).items():
        assert r.moments[k] == pytest.approx(v, rel=2e-6), k


def _g_structured(s):
    """``g(-lam) = (1/p) tr (K + lam)^{-1}`` from the structured ridge solvers' fixed points
    (docs/theory.md, Sec. 12) and their resolvent ``e = (1/d) tr Q`` of (H6)."""
    from rfdsm.theory.ge_structured import structured_ge
    from rfdsm.theory.gmp import Member, Resolvent
    from rfdsm.theory.structured import solve_data

    sol = solve_data(s)
    assert sol.converged
    ge = structured_ge(s)
    if s.m == 1:  # (H9): (K + lam)^{-1} ~ (kappa/lam) (Sigma + kappa)^{-1}
        kappa = sol.state
        e = Resolvent(ge.pi, s.psi_p, Member(ge.Sigma.A, ge.Sigma.alpha + kappa)).e
        return kappa / s.lam * e / s.psi_p
    if s.m == math.inf:  # (H10): Q ~ (x C + Sc + lam)^{-1}
        D = Member.combine((sol.state, ge.C), (1.0, ge.Sc), (s.lam, ge.I))
        return Resolvent(ge.pi, s.psi_p, D).e / s.psi_p
    branch, ws, wi = sol.state  # (H12), (F5) rescaled by lam above the threshold
    c0, c1 = (1.0, s.lam) if branch == "above" else (s.lam, 1.0)
    alpha = 1.0 / (c1 + wi + s.m * ws)
    theta = (1.0 - ws * alpha) / (c1 + wi)
    D = Member.combine((alpha, ge.C), (theta, ge.Sc), (c0, ge.I))
    g = Resolvent(ge.pi, s.psi_p, D).e / s.psi_p
    return g / s.lam if branch == "above" else g


@pytest.mark.parametrize("m", [1, 3, math.inf])
@pytest.mark.parametrize("data", [dict(psi_d=0.25), dict(data="spectrum(0.2:4,0.8:0.5)")],
                         ids=["subspace", "spiked"])
def test_structured_real_axis_limit_is_the_structured_solvers_resolvent(m, data):
    for shape in (dict(psi_n=2.0, psi_p=1.0), dict(psi_n=0.5, psi_p=3.0)):
        s = Setting(m=m, lam=0.01, **shape, **data)
        g, ok = stieltjes(s, [-s.lam])
        assert ok.all()
        assert g[0].real == pytest.approx(_g_structured(s), rel=1e-9)


@pytest.mark.parametrize("kw", [STRUCTURED[1], STRUCTURED[2]],
                         ids=["psi_d0.25-m4", "psi_d0.5-minf"])
def test_structured_moments_against_the_simulated_gram(kw):
    from scipy import stats

    from rfdsm.simulate.spectrum import gram_eigenvalues, gram_moments

    s = Setting(**kw)
    theory = spectrum(s).moments
    ds, means, ses = [], {k: [] for k in theory}, {k: [] for k in theory}
    for d, seeds in {40: 8, 80: 6, 160: 4}.items():
        mom = [gram_moments(gram_eigenvalues(s, d, seed)) for seed in range(seeds)]
        ds.append(d)
        for k in theory:
            vals = [x[k] for x in mom]
            means[k].append(np.mean(vals))
            ses[k].append(np.std(vals, ddof=1) / math.sqrt(seeds))
    z = stats.norm.ppf(1.0 - 0.01 / (2 * 6))  # Bonferroni over 2 settings x 3 moments
    iso = closed_form_moments(Setting(**{k: v for k, v in kw.items() if k != "psi_d"}))
    for k, v in theory.items():
        c0, se = _extrapolate(ds, means[k], ses[k])
        assert abs(c0 - v) <= z * se, (k, c0, se, v)
        if k == 1:  # the check tells the subspace from the isotropic data
            assert abs(c0 - iso[k]) > z * se


def test_cli_spectrum_reads_the_data_model_and_refuses_other_laws_by_name():
    def first_moment(*args):
        out = _cli("spectrum", "--psi-n", "2", "--psi-p", "1", "--json", *args, timeout=120)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)["moments"]["1"]

    assert abs(first_moment("--psi-d", "0.25") - first_moment()) > 1e-3
    out = _cli("spectrum", "--psi-n", "2", "--psi-p", "1", "--data", "shifted(1)")
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and out.stdout == "" and len(lines) == 1
    assert "shifted" in lines[0] and "mean" in lines[0]
    out = _cli("spectrum", "--psi-n", "2", "--psi-p", "1", "--psi-d", "0.5",
               "--activation", "linear")
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1 and "linear" in lines[0]
    with pytest.raises(ValueError, match="psi_d = 0.5.*nonlinear"):
        spectrum(Setting(psi_n=2, psi_p=1, psi_d=0.5, activation="linear"))


def test_exact_mp_averages_agree_with_a_fine_quadrature():
    """The closed-form MP averages of the Stieltjes solver against the quadrature rule on many
    nodes, on both sides of psi_p = 1, at points near and far from the support."""
    from rfdsm.theory.stieltjes import _ExactMP, _Rule

    A = np.array([1.0 + 0.2j, 0.5 - 0.1j, 2.0, 1e-3 + 0j, 1.0])
    B = np.array([-1.0 + 0.3j, 3.0 + 1j, 1e3 + 1e-3j, 0.5 + 0.01j, -0.001 + 1j])
    for psi_p in (0.3, 1.0, 2.0, 64.0):
        st = Setting(psi_n=1, psi_p=psi_p, m="inf", t=0.1)
        sp = ge_spectrum(st, 4000)
        exact, rule = _ExactMP(st, sp), _Rule(st, sp)
        for a, b in zip(exact.moments(A, B), rule.moments(A, B)):
            np.testing.assert_allclose(a, b, rtol=1e-12)
        np.testing.assert_allclose(exact.mean_inv(A, B), rule.mean_inv(A, B), rtol=1e-12)


@pytest.mark.parametrize("args", [
    ("--psi-n", "1", "--psi-p", "2", "--m", "inf", "--t", "3"),
    ("--psi-n", "0.01", "--psi-p", "2", "--m", "1"),
    ("--psi-n", "1e6", "--psi-p", "2", "--m", "1"),
    ("--psi-n", "1", "--psi-p", "2", "--m", "1000000"),
    ("--psi-n", "1", "--psi-p", "2", "--m", str(2 ** 53)),
])
def test_spectrum_ends_in_bounded_time_with_a_status(args):
    """Extreme settings end (these took minutes or never ended) with exit 0 and converged, or
    exit 1 with the reason printed: never a hang."""
    out = _cli("spectrum", *args, timeout=90)
    assert out.returncode in (0, 1), out.stderr
    last = out.stdout.strip().splitlines()[-1]
    assert last.startswith("  converged = ")
    if out.returncode == 1:
        assert "converged = False  (" in last


def test_moments_the_density_misses_are_not_reported_as_converged():
    """``psi_p = 1e6``: the bulks carry a mass of ~2e-6, inside the mass check, but most of
    ``tr K/p``; a part of them the grid misses moves the moments by 1%."""
    r = spectrum(Setting(psi_n=1, psi_p=1e6, m="inf"))
    assert not r.converged and "closed form (S8)" in r.message


def test_a_narrow_bulk_on_the_grid_does_not_cut_the_wide_ones():
    """t = 3: a bulk of width ~1e-9 sits at kappa_i^2 with a peak ~2e8.  A grid point inside it
    must not lift the floor of (S7) (relative to the peak) above the density of the wide bulk
    [0.090, 2.166], which it would cut to [0.096, 0.601]."""
    from rfdsm.theory import spectrum as module

    s = Setting(psi_n=1, psi_p=2, m="inf", t=3.0)
    ev = module._Evaluator(s, 400)
    bottom = module._floor(s)
    grid = np.unique(np.r_[module._grid(s, ev.scale, None), bottom + 6e-10])
    assert ev.inside(np.array([bottom + 6e-10]), 0.0)[1][0] > 1e8
    bulks = module._bulks(ev, grid)[0]
    assert bulks[-1][0] == pytest.approx(0.0904, abs=1e-3)
    assert bulks[-1][1] == pytest.approx(2.1658, abs=1e-3)


def test_a_spent_work_budget_is_reported_not_hidden(monkeypatch):
    from rfdsm.theory import spectrum as module

    monkeypatch.setattr(module, "_WORK_BUDGET", 20_000)
    r = spectrum(Setting(psi_n=0.5, psi_p=3, m="inf"))
    assert not r.converged and "work budget" in r.message
    assert r.diagnostics["newton_steps"] < 20_000 + 600 * len(r.E) + 10_000


@pytest.mark.parametrize("args", [
    ("--psi-n", "1", "--psi-p", "64", "--t", "0.01", "--m", "1000000"),
    ("--psi-n", "0.5", "--psi-p", "3", "--m", "1000000"),
    ("--psi-n", "1", "--psi-p", "2", "--m", "inf", "--t", "3"),
])
def test_the_work_of_one_spectrum_is_bounded(args):
    from rfdsm.theory.spectrum import _WORK_BUDGET

    out = _cli("spectrum", *args, "--json", timeout=90)
    res = json.loads(out.stdout)
    assert out.returncode == (0 if res["converged"] else 1), out.stderr
    # the budget, overshot by at most one batch of solves and the density on the output grid
    assert res["diagnostics"]["newton_steps"] <= 1.5 * _WORK_BUDGET


def test_a_bulk_within_the_resolution_of_the_bottom_is_named():
    """``p < n + d``: ``U`` has no atom (rank counting), but at large t the shared part
    ``C ~ a^2`` lifts the eigenvalues of ``Sc`` at ``kappa_i^2`` (the atom of ``S`` at 0) by
    less than the resolution: the weight found there is named as no atom."""
    r = spectrum(Setting(psi_n=1, psi_p=1.5, m="inf", t=5.0))
    assert "not an atom by rank counting" in r.message


def test_spectrum_refuses_a_size_it_cannot_hold_before_any_work():
    out = _cli("spectrum", "--psi-n", "1", "--psi-p", "2", "--d", "100000000", timeout=60)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rfdsm: error: d = 100000000"), out.stderr
    assert "GiB" in lines[0]


def test_simulate_refuses_an_endless_number_of_seeds():
    out = _cli("simulate", "--psi-n", "1", "--psi-p", "2", "--d", "20",
               "--seeds", "1000000000000", timeout=60)
    assert out.returncode == 2
    assert "--seeds" in out.stderr and len(out.stderr.strip().splitlines()) == 1
    from rfdsm.simulate import simulate

    with pytest.raises(ValueError, match="n_seeds must be an integer between 1 and"):
        simulate(Setting(psi_n=1, psi_p=2), d=20, n_seeds=10 ** 12)


def test_simulate_shows_seed_progress_on_stderr_only():
    args = ("simulate", "--psi-n", "1", "--psi-p", "1", "--d", "16", "--seeds", "3", "--json")
    out = _cli(*args, timeout=120)
    assert out.returncode == 0, out.stderr
    json.loads(out.stdout)  # stdout stays one JSON document
    assert "3/3" in out.stderr and "seed" in out.stderr
    quiet = _cli(*args, "--quiet", timeout=120)
    assert quiet.returncode == 0 and quiet.stderr == ""
    assert json.loads(quiet.stdout)["train"] == json.loads(out.stdout)["train"]


def test_spectrum_with_d_shows_its_stages_on_stderr_only():
    args = ("spectrum", "--psi-n", "1", "--psi-p", "1", "--d", "16", "--json")
    out = _cli(*args, timeout=120)
    assert out.returncode in (0, 1), out.stderr
    assert "simulated_moments" in json.loads(out.stdout)
    assert "simulating K at d = 16" in out.stderr and "eigenvalues of K" in out.stderr
    quiet = _cli(*args, "--quiet", timeout=120)
    assert quiet.stderr == ""
