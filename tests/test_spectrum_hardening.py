"""``rfdsm spectrum`` and ``rfdsm simulate`` at the edges: the data law is read (not the model's
name), every call ends in bounded time with an honest status, sizes are refused before any
work, and long runs show progress on stderr only."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from rfdsm import Setting
from rfdsm.theory.common import ge_spectrum
from rfdsm.theory.spectrum import spectrum

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _cli(*args, timeout=60):
    env = {**os.environ, "PYTHONPATH": ROOT}
    return subprocess.run([sys.executable, "-m", "rfdsm.cli", *args], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=ROOT)


def test_subspace_data_is_refused_by_name_not_answered_with_the_isotropic_spectrum():
    st = Setting(psi_n=1, psi_p=0.5, m=1, psi_d=0.25)
    with pytest.raises(ValueError, match=r"isotropic data .* only.*psi_d = 0\.25"):
        spectrum(st)
    out = _cli("spectrum", "--psi-n", "1", "--psi-p", "0.5", "--psi-d", "0.25")
    assert out.returncode == 2
    assert out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "psi_d = 0.25" in lines[0], out.stderr
    with pytest.raises(ValueError, match=r"spectrum\(0\.5:2,0\.5:1\)"):
        spectrum(Setting(psi_n=1, psi_p=0.5, m=1, data="spectrum(0.5:2,0.5:1)"))


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
