"""A Setting holds its activation by content: re-registration, hashing and worker processes."""

import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import rfdsm
from rfdsm import Setting, register_activation
from rfdsm.sweep.config import load_config


def _softplus(x):
    return np.logaddexp(0.0, x)


def test_overwrite_does_not_change_an_earlier_setting():
    first = register_activation("ident_sp", _softplus, overwrite=True)
    s1 = Setting(psi_n=1, psi_p=2, m=1, activation="ident_sp")
    before = rfdsm.theory(s1).test
    register_activation("ident_sp", lambda x: 2.0 * _softplus(x), overwrite=True)
    s2 = Setting(psi_n=1, psi_p=2, m=1, activation="ident_sp")
    assert s1.sigma is first and s2.sigma is not first
    assert s1 != s2 and hash(s1) != hash(s2)
    # the earlier setting still evaluates the function it was built with
    assert rfdsm.theory(s1).test == before
    assert rfdsm.theory(s2).test != before
    assert s1.replace(psi_p=3).sigma is first


def test_equal_content_is_equal():
    a = register_activation("ident_twin_a", _softplus, overwrite=True)
    b = register_activation("ident_twin_a", _softplus, overwrite=True)
    assert a is not b and a == b and hash(a) == hash(b)
    assert Setting(psi_n=1, psi_p=1, activation=a) == Setting(psi_n=1, psi_p=1, activation=b)


def test_pickled_setting_carries_its_function_by_value():
    act = register_activation("ident_lambda", lambda x: np.tanh(x) + 0.1 * x, overwrite=True)
    s = Setting(psi_n=1, psi_p=2, activation=act)
    back = pickle.loads(pickle.dumps(s))
    assert back == s and back.activation == "ident_lambda"
    x = np.linspace(-2, 2, 5)
    assert np.array_equal(back.sigma(x), act(x))
    # built-ins travel by name and come back as the very object
    assert pickle.loads(pickle.dumps(Setting(psi_n=1, psi_p=1, activation="relu"))).sigma \
        is rfdsm.get_activation("relu")


def test_sweep_hash_sees_the_function():
    cfg = {"sweep": {"evaluators": ["theory"]},
           "grid": {"psi_n": 1, "psi_p": [1, 2], "activation": "ident_hash"}}
    register_activation("ident_hash", _softplus, overwrite=True)
    h1 = load_config(cfg).hash
    register_activation("ident_hash", lambda x: _softplus(x) - 0.5, overwrite=True)
    h2 = load_config(cfg).hash
    register_activation("ident_hash", _softplus, overwrite=True)
    assert h1 != h2 and load_config(cfg).hash == h1


def test_resumed_sweep_refuses_a_changed_function(tmp_path):
    cfg = {"sweep": {"evaluators": ["theory"]},
           "grid": {"psi_n": 1, "psi_p": [1, 2], "activation": "ident_resume"}}
    register_activation("ident_resume", _softplus, overwrite=True)
    rfdsm.sweep.run_sweep(cfg, tmp_path / "out", workers=1, progress=False, log=lambda m: None)
    register_activation("ident_resume", lambda x: 3.0 * _softplus(x), overwrite=True)
    with pytest.raises(Exception, match="force"):
        rfdsm.sweep.run_sweep(cfg, tmp_path / "out", workers=1, progress=False,
                              log=lambda m: None)


@pytest.mark.slow
def test_activation_registered_under_main_reaches_spawned_workers(tmp_path):
    # The registration runs only in the parent; the spawned workers re-import the script as
    # __mp_main__ and never register: the activation must travel inside the tasks.
    script = tmp_path / "user_script.py"
    script.write_text(textwrap.dedent(f"""
        import numpy as np
        import rfdsm
        from rfdsm.sweep import run_sweep

        if __name__ == "__main__":
            rfdsm.register_activation("mainsoft", lambda x: np.logaddexp(0.0, x) - 0.8)
            cfg = {{"sweep": {{"evaluators": ["theory", "simulate"]}},
                   "grid": {{"psi_n": 1, "psi_p": [0.5, 2], "m": [1, 2],
                             "activation": "mainsoft"}},
                   "simulate": {{"d": 20, "seeds": 1}}}}
            df = run_sweep(cfg, {str(tmp_path / 'out')!r}, workers=2, progress=False)
            print("ROWS", len(df), int(df["converged"].sum()))
    """))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=240, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "ROWS 8 8" in proc.stdout
