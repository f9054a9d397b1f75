"""`import rfdsm` and `rfdsm theory` stay light: no Numba, pandas or matplotlib.

Each check runs in a fresh interpreter, since this test process has loaded everything already.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from rfdsm import activations as A

HEAVY = ("numba", "pandas", "matplotlib")


def _child(code: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=120, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


REPORT = ("import json, os, sys; print(json.dumps({'heavy': sorted(m for m in sys.modules "
          f"if m.split('.')[0] in {HEAVY!r}), 'omp': os.environ.get('OMP_WAIT_POLICY')}}))")


def test_import_and_theory_load_no_heavy_module():
    got = _child("import math, rfdsm\n"
                 "s = rfdsm.Setting(psi_n=2, psi_p=4, m=math.inf, t=0.1, lam=0.01, activation='tanh')\n"
                 "assert rfdsm.theory(s).converged\n"
                 "rfdsm.theory(rfdsm.Setting(psi_n=2, psi_p=4, m=4, activation='erf'))\n" + REPORT)
    assert got == {"heavy": [], "omp": None}  # nor is the user's environment touched


def test_cli_theory_loads_no_heavy_module():
    got = _child("import contextlib, io\nfrom rfdsm.cli import main\n"
                 "with contextlib.redirect_stdout(io.StringIO()):\n"
                 "    assert main(['theory', '--psi-n', '2', '--psi-p', '4', '--m', 'inf']) == 0\n"
                 + REPORT)
    assert got == {"heavy": [], "omp": None}


def test_kernels_set_the_wait_policy_before_their_first_launch():
    got = _child("import rfdsm.activations.kernels\n" + REPORT)
    assert got["omp"] == "PASSIVE" and "numba" in got["heavy"]
    env = dict(os.environ, OMP_WAIT_POLICY="ACTIVE")  # a value set by the user wins
    out = subprocess.run([sys.executable, "-c", "import os, rfdsm.activations.kernels; "
                          "print(os.environ['OMP_WAIT_POLICY'])"], capture_output=True, text=True,
                         env=env, timeout=120, check=True)
    assert out.stdout.strip() == "ACTIVE"


@pytest.mark.parametrize("name", sorted(A._BUILTIN_COEFFICIENTS))
def test_tabulated_coefficients_are_the_quadrature_values(name):
    table = A._BUILTIN_COEFFICIENTS[name]
    assert A.get_activation(name).coefficients == table
    np.testing.assert_allclose(A._quadrature_coefficients(A.get_activation(name)), table,
                               rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("name", ["tanh", "erf"])
def test_numpy_and_numba_quadrature_agree(name, monkeypatch):
    act = A.get_activation(name)
    rng = np.random.default_rng(0)
    mu, s = rng.normal(size=300), np.repeat(rng.uniform(0.3, 1.5, size=30), 10)
    small = act._quadrature(mu, s, 6, 48)  # 14400 values: NumPy
    monkeypatch.setattr(A, "NUMPY_MAX_VALUES", 0)
    big = act._quadrature(mu, s, 6, 48)  # the Numba kernel
    for x, y in zip(small, big):
        np.testing.assert_allclose(x, y, rtol=0, atol=1e-14)


def test_import_contracts_hold():
    """The layers of docs/architecture.md and "no seam imports an evaluator", imports inside
    functions included (import-linter reads every import statement): ``.importlinter``."""
    import shutil
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    exe = shutil.which("lint-imports", path=os.pathsep.join(
        [str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    if exe is None:
        pytest.fail("lint-imports not found: install the test extra (pip install -e '.[test]')")
    out = subprocess.run([exe, "--config", str(root / ".importlinter")], cwd=root,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-1000:]
    assert "broken" not in out.stdout.split("Contracts:")[-1].lower().replace("0 broken", "")
