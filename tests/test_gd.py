"""Estimator ``gd``: gradient descent with a finite step (and heavy-ball momentum) from A = 0,
checked against the explicit iteration of docs/model.md ("Optimizers") on the same moments."""

from __future__ import annotations

import math

import numpy as np
import pytest

import rfdsm
from rfdsm import Setting
from rfdsm.estimators import flow_rate
from rfdsm.simulate import fit_score

BASE = dict(psi_n=2, psi_p=3, m=4, t=0.2, lam=0.01)


def _explicit(S, C, setting, steps):
    """``B <- B - c delta (B (S + lam) + C) + beta (B - B_prev)`` from ``B = 0`` (C: d x p)."""
    cd = flow_rate(setting) * setting.step
    A = S + setting.lam * np.eye(S.shape[0])
    B = prev = np.zeros_like(C)
    for _ in range(steps):
        B, prev = B - cd * (B @ A + C) + setting.momentum * (B - prev), B
    return B


@pytest.mark.parametrize("momentum", [0.0, 0.6])
@pytest.mark.parametrize("m", [3, math.inf])
def test_gd_is_the_explicit_iteration(m, momentum):
    s = Setting(**{**BASE, "m": m}, tau=6.0, estimator="gd", step=0.5, momentum=momentum)
    f = fit_score(s, 24, seed=2)
    mom = f.train_moments
    B = _explicit(mom.S, mom.C, s, 12)
    np.testing.assert_allclose(f.B, B, rtol=1e-9, atol=1e-12)


def test_small_steps_tend_to_gradient_flow():
    s = Setting(**BASE, tau=8.0)
    flow = rfdsm.simulate(s, d=30, seed=0).test
    gaps = [abs(rfdsm.simulate(s.replace(estimator="gd", step=h), d=30, seed=0).test - flow)
            for h in (1.0, 0.1, 0.01)]
    assert gaps[0] > gaps[1] > gaps[2] and gaps[2] < 2e-4 * flow
    # first order in the step: each tenth of the step divides the gap by about ten
    assert 5 < gaps[0] / gaps[1] < 20 and 5 < gaps[1] / gaps[2] < 20


def test_unstable_step_and_bad_input_are_refused(capsys):
    from rfdsm.cli import main

    s = Setting(**BASE, tau=100.0, estimator="gd", step=50.0)
    with pytest.raises(ValueError, match="step = 50 is unstable here: gradient descent diverges"):
        rfdsm.simulate(s, d=30)
    with pytest.raises(ValueError, match="whole number of steps"):
        rfdsm.simulate(s.replace(tau=10.0, step=0.3), d=30)
    with pytest.raises(ValueError, match="step must be > 0 for estimator gd"):
        rfdsm.simulate(s.replace(step=0.0), d=30)
    with pytest.raises(ValueError, match="momentum must be"):
        s.replace(momentum=1.0)
    assert main(["simulate", "--psi-n", "2", "--psi-p", "3", "--tau", "100", "--estimator", "gd",
                 "--step", "50", "--d", "30"]) == 2
    err = capsys.readouterr().err
    assert "unstable" in err and len(err.strip().splitlines()) == 1


def test_theory_refuses_a_finite_step_by_name_and_takes_the_minimiser():
    s = Setting(**BASE, tau=10.0, estimator="gd", step=1.0)
    with pytest.raises(ValueError, match="no equations for the estimator 'gd': 10 gradient steps"):
        rfdsm.theory(s)
    # tau = inf with a stable step is the ridge minimiser
    assert rfdsm.theory(s.replace(tau=math.inf)).test == rfdsm.theory(
        Setting(**BASE)).test
