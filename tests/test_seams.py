"""The estimator, data-model and metric seams: a toy estimator and a toy metric registered from
outside the package run through a sweep (in this process and in spawned workers) without any
edit of rfdsm, and the built-in path keeps its numbers."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

import rfdsm
from rfdsm import Setting
from rfdsm.data import DataModel, Isotropic, get_data, register_data
from rfdsm.estimators import Estimator, get_estimator, register_estimator
from rfdsm.metrics import register_metric, unregister_metric
from rfdsm.simulate import fit, fit_score

# Ridge with twice the ridge, as a plain spectral filter (the default eigh path); a lambda, so
# that it can only reach a spawned worker by value.
TOY = register_estimator(Estimator("toy", lambda s, st: 1.0 / (s + 2.0 * st.lam),
                                   description="ridge at 2 lam"), overwrite=True)


def _fro2(fitted):
    B = fitted.ops.to_host(fitted.B)
    return float(np.sum(B * B) / fitted.d)


@pytest.fixture
def fro2():
    register_metric("fro2", _fro2, description="|B|_F^2 / d", overwrite=True)
    yield "fro2"
    unregister_metric("fro2")


def test_toy_estimator_is_ridge_at_twice_the_ridge():
    for m in (2, math.inf):
        s = Setting(psi_n=1.5, psi_p=2, m=m, t=0.3, lam=0.02)
        toy = rfdsm.simulate(s.replace(estimator="toy"), d=30, seed=1)
        ridge = rfdsm.simulate(s.replace(lam=0.04), d=30, seed=1)
        for k in ("train", "test", "score"):
            assert getattr(toy, k) == pytest.approx(getattr(ridge, k), rel=1e-10)


def test_estimator_identity_and_pickling():
    s = Setting(psi_n=1, psi_p=2, estimator="toy")
    assert s.estimator == "toy" and s.estimator_object is TOY
    assert Setting(psi_n=1, psi_p=2, estimator=TOY) == s
    assert s != Setting(psi_n=1, psi_p=2)
    other = Estimator("toy", lambda e, st: 1.0 / (e + 3.0 * st.lam))
    assert other.fingerprint != TOY.fingerprint  # same name, other content
    back = pickle.loads(pickle.dumps(s))
    assert back == s and back.estimator_object.fingerprint == TOY.fingerprint
    assert pickle.loads(pickle.dumps(get_estimator("ridge"))) is get_estimator("ridge")
    with pytest.raises(ValueError, match="estimator"):
        Setting(psi_n=1, psi_p=2, estimator="nope")


def test_theory_refuses_what_it_has_no_equations_for():
    # a filter function says nothing the theory can read: refused, never ridge's limit
    with pytest.raises(ValueError, match="no equations for the estimator 'toy'.*filter "
                                         "function only"):
        rfdsm.theory(Setting(psi_n=1, psi_p=2, estimator="toy"))

    class Shifted(Isotropic):  # samples N(1, I) but inherits the law N(0, I)
        name = "shifted-toy"

        def sample(self, n, d, rng):
            return 1.0 + rng.standard_normal((n, d))

    register_data(Shifted(), overwrite=True)
    s = Setting(psi_n=1, psi_p=2, data="shifted-toy")
    for evaluate in (rfdsm.theory, lambda st: rfdsm.simulate(st, d=20)):
        with pytest.raises(ValueError, match="'shifted-toy': its sample contradicts its law"):
            evaluate(s)


def test_theory_evaluates_an_estimator_by_its_form():
    from rfdsm.estimators import GradientFlow, Resolvent, flow_rate

    s = Setting(psi_n=2, psi_p=4, m=math.inf, t=0.1, lam=0.01)
    twice = Estimator("twice-ridge", form=lambda st: Resolvent(2.0 * st.lam))
    got = rfdsm.theory(s.replace(estimator=twice))
    assert got.setting.estimator == "twice-ridge" and got.setting.lam == 0.01
    assert got.test == rfdsm.theory(s.replace(lam=0.02)).test != rfdsm.theory(s).test
    # the simulator evaluates the same form: ridge at 2 lam
    sim = rfdsm.simulate(s.replace(estimator=twice), d=30, seed=2)
    assert sim.test == pytest.approx(rfdsm.simulate(s.replace(lam=0.02), d=30, seed=2).test,
                                     rel=1e-10)
    # gradient flow stated by a user: the flow solver at tau = ct / c
    flow = Estimator("my-flow", form=lambda st: GradientFlow(st.lam, 3.0 * flow_rate(st)))
    assert rfdsm.theory(s.replace(estimator=flow)).test == pytest.approx(
        rfdsm.theory(s.replace(tau=3.0)).test, rel=1e-12)
    # a filter that contradicts its form is refused where the estimator is first used
    liar = Estimator("liar", lambda e, st: 1.0 / (e + st.lam), form=lambda st: Resolvent(2 * st.lam))
    with pytest.raises(ValueError, match="'liar': its filter is not its form"):
        Setting(psi_n=1, psi_p=2, estimator=liar).__hash__()
    with pytest.warns(DeprecationWarning, match="has_theory"):
        Estimator("old", lambda e, st: 1.0 / (e + st.lam), has_theory=True)


def test_bayes_comes_from_the_data_model():
    from rfdsm.plots._table import bayes_level

    s = Setting(psi_n=1, psi_p=2, t=0.7)
    assert s.data_model is get_data("isotropic")
    assert s.bayes == math.exp(-1.4) == bayes_level(0.7)
    np.testing.assert_array_equal(bayes_level(np.array([0.7, 0.1])), np.exp([-1.4, -0.2]))

    class Half(Isotropic):
        name = "half-bayes"

        def bayes(self, t):
            return 0.5 * super().bayes(t)

    register_data(Half(), overwrite=True)
    assert Setting(psi_n=1, psi_p=2, t=0.7, data="half-bayes").bayes == 0.5 * s.bayes
    assert bayes_level(0.7, "half-bayes") == 0.5 * s.bayes
    assert rfdsm.simulate(s, d=10).to_dict()["bayes"] == s.bayes
    assert isinstance(s.data_model, DataModel)


def test_fitted_score_is_the_random_features_score():
    s = Setting(psi_n=2, psi_p=1.5, m=3, t=0.4, lam=0.05, activation="erf")
    d = 20
    f = fit_score(s, d, seed=4)
    y = np.random.default_rng(0).standard_normal((7, d))
    # s_A(y) = B sigma(W y / sqrt d) / sqrt(h), directly
    phi = s.sigma(y @ f.W.T / math.sqrt(d))
    np.testing.assert_allclose(f(y), phi @ f.B.T / math.sqrt(s.h), rtol=1e-12, atol=1e-14)
    assert f.B.shape == (d, s.sizes(d)[1]) and f.t == s.t and f.activation is s.sigma
    # its metrics are the simulation's numbers
    res = rfdsm.simulate(s, d=d, seed=4)
    assert 1.0 + f.population_quadratic / d == res.test
    assert f.train_moments.noise_sq + f.quadratic(f.train_moments) / d == pytest.approx(
        res.train, rel=1e-14, abs=1e-15)


def test_toy_metric_is_a_result_column(fro2):
    s = Setting(psi_n=1, psi_p=2, m=2, t=0.2)
    res = rfdsm.simulate(s, d=16, seed=0, n_seeds=2)
    per_seed = [_fro2(fit_score(s, 16, seed=k)) for k in (0, 1)]
    assert res.metrics["fro2"] == pytest.approx(np.mean(per_seed), rel=1e-12)
    assert res.metrics["fro2_se"] > 0
    assert [r["fro2"] for r in res.rows()] == pytest.approx(per_seed, rel=1e-12)
    out = res.to_dict()
    assert out["fro2"] == res.metrics["fro2"] and "fro2_se" in out
    # only the built-ins when asked for none
    assert rfdsm.simulate(s, d=16, metrics=()).metrics == {}
    with pytest.raises(ValueError, match="column"):
        register_metric("test_se", _fro2)


def _sweep(tmp_path, name, workers):
    from rfdsm.sweep import run_sweep

    cfg = {"sweep": {"evaluators": ["simulate"]},
           "grid": {"psi_n": 1, "psi_p": [0.5, 2], "m": 2, "estimator": "toy"},
           "simulate": {"d": 12, "seeds": 2}}
    return run_sweep(cfg, tmp_path / name, workers=workers, progress=False, log=lambda m: None)


def test_toy_estimator_and_metric_through_a_sweep(tmp_path, fro2):
    df = _sweep(tmp_path, "one", 1)
    assert len(df) == 4 and set(df["estimator"]) == {"toy"} and set(df["data"]) == {"isotropic"}
    assert "fro2" in df.columns and df["fro2"].notna().all()
    row = df.iloc[0]
    s = Setting(psi_n=1, psi_p=row["psi_p"], m=2, estimator="toy")
    direct = rfdsm.simulate(s, d=12, seed=int(row["seed"]))
    assert row["test"] == direct.test and row["fro2"] == direct.metrics["fro2"]
    assert rfdsm.load_results(tmp_path / "one")["fro2"].tolist() == df["fro2"].tolist()


@pytest.mark.slow
def test_toy_estimator_reaches_spawned_workers(tmp_path):
    one, two = _sweep(tmp_path, "one", 1), _sweep(tmp_path, "two", 2)
    assert set(two["estimator"]) == {"toy"}
    for k in ("train", "test", "score"):
        assert two[k].tolist() == one[k].tolist()


@pytest.mark.slow
def test_toy_metric_reaches_spawned_workers(tmp_path, fro2):
    two = _sweep(tmp_path, "two", 2)
    assert "fro2" in two.columns and two["fro2"].notna().all()


def test_builtin_numbers_unchanged():
    # same seed, same numbers as before the seams (values of the snapshot before the change,
    # to 1e-12; they agree with it to 4e-14 and with the parent commit bit for bit)
    cases = [
        (dict(psi_n=2, psi_p=3, m=1, t=0.2, lam=0.01), REF[0]),
        (dict(psi_n=1.5, psi_p=1, m=4, t=0.5, lam=0.0), REF[1]),
        (dict(psi_n=1, psi_p=2, m=math.inf, t=0.1, lam=0.01, activation="relu"), REF[2]),
        (dict(psi_n=2, psi_p=1, m=math.inf, t=0.3, lam=0.0, activation="erf"), REF[3]),
    ]
    for kw, ref in cases:
        r = rfdsm.simulate(Setting(**kw), d=40, seed=3, n_seeds=2)
        assert [r.train, r.test, r.score] == pytest.approx(ref, rel=1e-12, abs=1e-15), kw


#: train, test, score of the snapshot /tmp/rfdsm-h (before the seams), d = 40, seeds 3 and 4
REF = [
    [0.06754819771121884, 1.5422536417399575, 2.644788029176249],
    [0.4012478808244807, 0.6379754230624433, 0.42728555197056284],
    [0.6521509630025102, 1.37044722967316, 3.0436297715327636],
    [0.5822883424493459, 0.6872994293526584, 0.30694008165399533],
]


def test_default_estimator_path_matches_the_filter():
    # the ridge filter through eigh equals the Cholesky solve
    s = Setting(psi_n=2, psi_p=1, m=2, t=0.3, lam=0.03)
    f = fit_score(s, 20, seed=2)
    K = Estimator.solve(s.estimator_object, f.train_moments.S, f.train_moments.C, s, fit.HOST)
    np.testing.assert_allclose(K, f.K, rtol=1e-9, atol=1e-12)


def test_sweep_hash_sees_the_estimator_content():
    from rfdsm.sweep.config import load_config

    cfg = {"sweep": {"evaluators": ["simulate"]},
           "grid": {"psi_n": 1, "psi_p": 2, "estimator": "toy_hash"},
           "simulate": {"d": 12}}
    register_estimator(Estimator("toy_hash", lambda s, st: 1.0 / (s + st.lam)), overwrite=True)
    h1 = load_config(cfg).hash
    register_estimator(Estimator("toy_hash", lambda s, st: 2.0 / (s + st.lam)), overwrite=True)
    assert load_config(cfg).hash != h1
    # a grid that does not name the estimator keeps the hash it had before the seam
    plain = {**cfg, "grid": {"psi_n": 1, "psi_p": 2}}
    assert "estimator" not in load_config(plain).normalised()
