"""One battery for every registered seam object, built-in or defined here as a user would.

Every activation, data model, estimator, metric and evaluator goes through the same checks:
identity by content (equal to its pickled copy, unequal to an object of the same name and
other content), pickling to a spawned worker, the theory either answering converged or
refusing by name, a tiny simulation with physically possible numbers, and, for a data law
with a closed-form true score, ``test = h score + bayes`` with the Bayes level of the law
checked by Monte Carlo from the law's own sample and true score.
"""

from __future__ import annotations

import math
import pickle
import subprocess
import sys

import numpy as np
import pytest

import rfdsm
from rfdsm import Setting
from rfdsm.activations import get_activation, registered_activations
from rfdsm.data import DataModel, GaussianLaw, get_data, register_data, registered_data
from rfdsm.estimators import (Estimator, GradientFlow, Resolvent, StepRule, get_estimator,
                              register_estimator, registered_estimators)
from rfdsm.evaluators import get_evaluator, registered_evaluators
from rfdsm.metrics import get_metric, register_metric, registered_metrics

BASE = dict(psi_n=1.5, psi_p=2.0, t=0.3, lam=0.02)


# toys, defined as a user would ---------------------------------------------------------------
class ShiftedToy(DataModel):
    """``N(mu, I)`` with ``|mu|^2/d = 0.5``: one new class, no evaluator code."""

    name = "conformance-shifted"

    def law(self):
        return GaussianLaw(mean_norms=(0.5,))


class SpikedToy(DataModel):
    name = "conformance-spiked"

    def law(self):
        return GaussianLaw(weights=(0.1, 0.9), values=(4.0, 0.5))


TOY_DATA = [register_data(ShiftedToy(), overwrite=True), register_data(SpikedToy(), overwrite=True)]
TOY_ESTIMATORS = [
    register_estimator(Estimator("conformance-twice-ridge", form=lambda st: Resolvent(2 * st.lam)),
                       overwrite=True),
    register_estimator(Estimator("conformance-filter-only", lambda e, st: 1.0 / (e + 3 * st.lam)),
                       overwrite=True),
    register_estimator(Estimator("conformance-gd", form=lambda st: StepRule(st.lam, 0.05, 40)),
                       overwrite=True),
]
TOY_METRIC = register_metric("conformance_fro2",
                             lambda f: float(np.sum(f.ops.to_host(f.B) ** 2) / f.d),
                             description="|B|_F^2 / d", overwrite=True, default=False)
rfdsm.register_activation("conformance-softsign", lambda x: x / (1.0 + np.abs(x)),
                          kinks=(0.0,), overwrite=True)

DATA = [*[n for n in registered_data()], "spectrum(0.25:1,0.75:0)", "spectrum(0.5:3,0.5:0.2)"]
ESTIMATORS = list(registered_estimators())
ACTIVATIONS = list(registered_activations())
METRICS = list(registered_metrics())


def _roundtrip(obj):
    return pickle.loads(pickle.dumps(obj))


def _theory_or_refusal(setting):
    """The theory's result, or None after a refusal that names what it lacks."""
    try:
        res = rfdsm.theory(setting)
    except ValueError as exc:
        assert "no equations for" in str(exc) or "describes no law" in str(exc), str(exc)
        return None
    assert res.success and res.status in ("ok", "divergent"), res.message
    return res


# data models ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", DATA)
def test_data_model_identity_and_pickling(name):
    model = get_data(name)
    assert _roundtrip(model) == model and hash(_roundtrip(model)) == hash(model)
    assert Setting(**BASE, data=name) == _roundtrip(Setting(**BASE, data=name))
    assert model.checked_law() is not None


@pytest.mark.parametrize("name", DATA)
def test_data_model_law_is_consistent(name):
    """``E|sqrt(h) s*(y) + eps|^2 / d = bayes`` by Monte Carlo from the law's own sample and
    true score (an independent check of the three), and the theory answers or refuses."""
    model = get_data(name)
    law = model.checked_law()
    d, n, t = 40, 20000, 0.3
    h, a = -math.expm1(-2 * t), math.exp(-t)
    rng = np.random.default_rng(7)
    x = model.sample(n, d, rng)
    eps = rng.standard_normal((n, d))
    y = a * x + math.sqrt(h) * eps
    err = np.sum((math.sqrt(h) * model.true_score(y, h) + eps) ** 2, axis=1) / d
    finite_d = 1.0 - h * model.score_offset(t, h, d)  # bayes at this d (rounded atom counts)
    assert abs(err.mean() - finite_d) < 5 * err.std(ddof=1) / math.sqrt(n)
    if isinstance(law, GaussianLaw):
        w = law.counts(d) / d  # the limit's Bayes level on the counts of this d
        assert finite_d == pytest.approx(
            float(sum(wk * a * a * v / (a * a * v + h) for wk, v in zip(w, law.values))), rel=1e-12)
    _theory_or_refusal(Setting(**BASE, data=name))


@pytest.mark.parametrize("name", DATA)
@pytest.mark.parametrize("m", [1, math.inf])
def test_data_model_simulates(name, m):
    s = Setting(**BASE, m=m, data=name)
    r = rfdsm.simulate(s, d=20, seed=3)
    assert r.train >= 0 and math.isfinite(r.test) and math.isfinite(r.score)
    # test is a population error: never below the Bayes level of the law at this d
    h = s.h
    bayes_d = 1.0 - h * s.data_model.score_offset(s.t, h, 20)
    assert r.test >= bayes_d - 1e-12
    assert r.test == pytest.approx(h * r.score + bayes_d, rel=1e-12)


def test_shifted_toy_is_measured_against_its_own_population():
    """Exact population errors with the mean equal Monte Carlo on fresh points of the law."""
    s = Setting(**BASE, m=math.inf, data=ShiftedToy.name)
    r = rfdsm.simulate(s, d=30, seed=1, mc_test=60000)
    diag = r.diagnostics
    assert abs(r.test - diag["test_mc"]) < 5 * diag["test_mc_se"]
    assert abs(r.score - diag["score_mc"]) < 5 * diag["score_mc_se"]
    # and the mean matters: the centred law gives another test error
    assert abs(rfdsm.simulate(s.replace(data="isotropic"), d=30, seed=1).test - r.test) > \
        20 * diag["test_mc_se"]
    with pytest.raises(ValueError, match="a law with a mean"):
        rfdsm.theory(s)


# estimators -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ESTIMATORS)
def test_estimator_identity_pickling_and_filter(name):
    est = get_estimator(name)
    assert _roundtrip(est) == est and hash(_roundtrip(est)) == hash(est)
    s = Setting(**BASE, estimator=name)
    rng = np.random.default_rng(0)
    G = rng.standard_normal((12, 30))
    S, C = G @ G.T / 30, rng.standard_normal((5, 12))
    from rfdsm.simulate.fit import HOST

    K = est.solve(S, C, s, HOST)
    evals, Q = np.linalg.eigh(S)
    ref = Q @ (np.asarray(est.filter(evals, s))[:, None] * (Q.T @ C.T))
    np.testing.assert_allclose(K, ref, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("name", ESTIMATORS)
def test_estimator_theory_answers_by_form_or_refuses(name):
    s = Setting(**BASE, m=math.inf, estimator=name)
    form = s.estimator_object.spectral_form(s)
    res = _theory_or_refusal(s)
    if form is None or isinstance(form, StepRule):
        assert res is None
    elif isinstance(form, Resolvent):
        assert res.test == rfdsm.theory(s.replace(estimator="ridge", lam=form.z)).test
    elif isinstance(form, GradientFlow):
        assert res is not None


@pytest.mark.parametrize("name", ESTIMATORS)
def test_estimator_simulates(name):
    r = rfdsm.simulate(Setting(**BASE, m=2, estimator=name), d=16, seed=0)
    assert r.train >= 0 and r.test > 0 and math.isfinite(r.score)


# activations ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_identity_theory_and_simulation(name):
    act = get_activation(name)
    assert _roundtrip(act) == act
    s = Setting(**BASE, m=math.inf, activation=name)
    res = _theory_or_refusal(s)
    assert res is not None  # the theory has the limit of every activation (its centred part)
    r = rfdsm.simulate(s, d=16, seed=0)
    assert r.train >= 0 and r.test >= s.bayes - 1e-12


# metrics --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", METRICS)
def test_metric_pickles_and_simulates(name):
    metric = get_metric(name)
    back = _roundtrip(metric)
    assert back.name == metric.name and back.has("simulate") == metric.has("simulate")
    if not metric.has("simulate"):
        return
    s = Setting(**BASE, m=math.inf)
    a = rfdsm.simulate(s, d=16, seed=2, metrics=[name])
    b = rfdsm.simulate(s, d=16, seed=2, metrics=[name])
    value = a.metrics.get(name, getattr(a, name, None))
    assert value is not None and math.isfinite(value)
    assert value == b.metrics.get(name, getattr(b, name, None))


# evaluators -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(registered_evaluators()))
def test_evaluator_contract(name):
    ev = get_evaluator(name)
    assert ev.name == name and ev.style and isinstance(ev.finite_size, bool)
    assert _roundtrip(ev).name == name
    options = ev.parse({"d": 12} if ev.finite_size else {})
    s = Setting(**BASE, m=math.inf)
    ev.check([s], options)
    tasks = ev.tasks([s], options, "psi_p")
    assert tasks and all(_roundtrip(task)["key"] == task["key"] for task in tasks)
    rows = [row for task in tasks for row in ev.run(task)]
    assert len(rows) == sum(task["rows"] for task in tasks)
    assert all(math.isfinite(row["test"]) and row["test"] >= s.bayes - 1e-12 for row in rows)


# a spawned worker -----------------------------------------------------------------------------
def test_user_objects_reach_a_fresh_interpreter_by_value():
    """A setting with a toy data model, estimator and activation, pickled here, unpickled in a
    fresh interpreter that never registered them (the functions travel by value; the toy's
    class by reference, importable there as from a worker): the same simulation numbers."""
    import os
    s = Setting(**BASE, m=2, data=ShiftedToy.name, estimator="conformance-twice-ridge",
                activation="conformance-softsign")
    here = rfdsm.simulate(s, d=12, seed=4)
    code = ("import pickle, sys, rfdsm; s = pickle.loads(sys.stdin.buffer.read()); "
            "print(repr(rfdsm.simulate(s, d=12, seed=4).test))")
    path = os.pathsep.join(p for p in sys.path if p)
    out = subprocess.run([sys.executable, "-c", code], input=pickle.dumps(s),
                         capture_output=True, timeout=300, check=True,
                         env={**os.environ, "PYTHONPATH": path})
    assert float(out.stdout.decode().strip()) == here.test
