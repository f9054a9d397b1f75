import math

import rfdsm


def test_one_setting_two_evaluators_same_record():
    s = rfdsm.Setting(psi_n=1.0, psi_p=2.0, m=math.inf, t=0.1, lam=0.01)
    th = rfdsm.theory(s)
    sim = rfdsm.simulate(s, d=20, seed=0)
    assert type(th) is type(sim) is rfdsm.Result
    assert th.evaluator == "theory" and sim.evaluator == "simulate"
    assert set(th.to_dict()) == set(sim.to_dict())
    assert set(th.rows()[0]) == set(sim.rows()[0])


def test_theory_stays_callable_after_submodule_import():
    import rfdsm.theory  # rebinds the attribute to the subpackage
    from rfdsm.theory import theory_curve

    s = rfdsm.Setting(psi_n=2.0, psi_p=4.0)
    assert rfdsm.theory(s).test == rfdsm.theory.theory(s).test
    assert callable(theory_curve)
