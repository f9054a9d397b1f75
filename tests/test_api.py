import math

import pytest

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


@pytest.mark.parametrize("first", ["rfdsm.theory.spectrum", "rfdsm.theory.plateau",
                                   "rfdsm.theory", "rfdsm.simulate.simulate_tau_curve",
                                   "rfdsm.simulate"])
def test_evaluator_modules_are_callable_whatever_is_accessed_first(first):
    """``rfdsm.theory`` and ``rfdsm.simulate`` are the subpackages and the evaluators at once, in
    a fresh interpreter whichever name is reached first."""
    import subprocess
    import sys

    code = (f"import rfdsm; {first}\n"
            "s = rfdsm.Setting(psi_n=1, psi_p=2)\n"
            "assert rfdsm.theory(s).converged and rfdsm.theory.plateau(s.replace(lam=0.01))\n"
            "assert callable(rfdsm.theory.spectrum) and callable(rfdsm.simulate.fit_score)\n"
            "assert rfdsm.simulate(s, d=8).test > 0 and callable(rfdsm.simulate.simulate_tau_curve)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]


def test_old_module_paths_still_import_and_unpickle():
    """The layout moved modules; their old paths import (with a DeprecationWarning where they
    are not public API) and settings pickled under the old paths (sweep journals) load."""
    import pickle
    import subprocess
    import sys

    code = ("import pickle, sys, warnings\n"
            "warnings.simplefilter('error', DeprecationWarning)\n"
            "import rfdsm\n"
            "from rfdsm.core.setting import Setting\n"
            "blob = pickle.dumps(Setting(psi_n=1, psi_p=2), protocol=2)\n"
            "old = blob.replace(b'rfdsm.core.setting', b'rfdsm.setting')\n"
            "assert old != blob\n"
            "warnings.simplefilter('ignore', DeprecationWarning)\n"
            "assert pickle.loads(old) == Setting(psi_n=1, psi_p=2)\n"
            "import rfdsm.timescales, rfdsm.diagnostics  # public: no warning\n"
            "warnings.simplefilter('error', DeprecationWarning)\n"
            "import rfdsm.early_stopping, rfdsm.optimal, rfdsm.validate\n"
            "try:\n"
            "    import rfdsm.covariance\n"
            "except DeprecationWarning as w:\n"
            "    assert 'rfdsm.data.spectrum' in str(w)\n"
            "else:\n"
            "    raise SystemExit('no warning for rfdsm.covariance')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]


@pytest.mark.parametrize("code", [
    "import rfdsm.evaluators.sample",
    "import rfdsm.sample.evaluator",
    "import rfdsm.sample, rfdsm.evaluators; rfdsm.evaluators.get_evaluator('sample')",
    # what a Dask or spawned worker does with a task of the sample evaluator: unpickle it first
    "import pickle, sys; task = pickle.loads(sys.stdin.buffer.read()); "
    "assert task['evaluator'].name == 'sample'",
])
def test_the_sample_evaluator_imports_in_a_fresh_interpreter(code):
    import pickle
    import subprocess
    import sys

    from rfdsm import Setting
    from rfdsm.evaluators import get_evaluator

    ev = get_evaluator("sample")
    task = ev.tasks([Setting(psi_n=1, psi_p=2, m=math.inf)], ev.parse({"d": 8}), "psi_p")[0]
    out = subprocess.run([sys.executable, "-W", "ignore::DeprecationWarning", "-c", code],
                         input=pickle.dumps(task), capture_output=True, timeout=120)
    assert out.returncode == 0, out.stderr.decode()[-2000:]


def test_every_result_type_speaks_one_status_vocabulary():
    """Result, the optimal ridge, the stopping point and the time-scales answer success, status
    and message, with the status one of rfdsm.core.status.STATUSES."""
    from rfdsm.analysis.early_stopping import stopping_point, StoppingPoint
    from rfdsm.analysis.optimal import optimal_lambda
    from rfdsm.analysis.timescales import spectral_timescales
    from rfdsm.core.status import STATUSES

    s = rfdsm.Setting(psi_n=1, psi_p=2)
    res = rfdsm.theory(s)
    edge = StoppingPoint(*stopping_point([1, 2, 3, 4], [4, 3, 2, 1])[:2],
                         status=stopping_point([1, 2, 3, 4], [4, 3, 2, 1])[2])
    opt = optimal_lambda(s.replace(m=math.inf))
    scales = spectral_timescales(rfdsm.Setting(psi_n=4, psi_p=1, m=math.inf, t=0.01, lam=0.0))
    for obj in (res, edge, opt, *scales.values()):
        assert obj.status in STATUSES and isinstance(obj.success, bool)
        assert isinstance(obj.message, str)
    assert res.success and edge.status == "at_bound" and not edge.success
    assert scales["tau_mem"].status == "undefined" and not scales["tau_mem"].success
