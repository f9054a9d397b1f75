"""GPU backend against the CPU backend (skipped without CuPy and a CUDA device)."""

import math

import numpy as np
import pytest

import rfdsm
from rfdsm.simulate import gpu

pytestmark = pytest.mark.skipif(not gpu.available(), reason="CuPy with a CUDA device is not available")

ERR = ("train", "test", "score")


@pytest.mark.parametrize("activation", ["tanh", "erf", "relu"])
@pytest.mark.parametrize("m", [1, 4, math.inf])
@pytest.mark.parametrize("d", [60, 150])
def test_gpu_matches_cpu_float64(activation, m, d):
    # Same random draws on both backends; only summation order differs, so 1e-8 relative
    # (the required CPU/GPU agreement) is far above the expected ~1e-12.
    s = rfdsm.Setting(2, 3, m=m, t=0.2, lam=0.01, activation=activation)
    cpu = rfdsm.simulate(s, d, seed=3)
    dev = rfdsm.simulate(s, d, seed=3, backend="gpu")
    assert dev.diagnostics["backend"] == "gpu"
    for k in ERR:
        assert getattr(dev, k) == pytest.approx(getattr(cpu, k), rel=1e-8)


def test_gpu_ridgeless_and_float32():
    s = rfdsm.Setting(2, 3, m=math.inf, t=0.2, lam=0.0)
    cpu = rfdsm.simulate(s, 80, seed=1)
    dev = rfdsm.simulate(s, 80, seed=1, backend="gpu")
    for k in ERR:
        assert getattr(dev, k) == pytest.approx(getattr(cpu, k), rel=1e-8)
    s = s.replace(lam=0.05)
    cpu = rfdsm.simulate(s, 80, seed=1)
    dev32 = rfdsm.simulate(s, 80, seed=1, backend="gpu", dtype=np.float32)
    for k in ERR:
        assert getattr(dev32, k) == pytest.approx(getattr(cpu, k), rel=2e-5)


def test_gpu_seeds_reproducible():
    s = rfdsm.Setting(2, 2, m=3)
    a = rfdsm.simulate(s, 50, seed=2, n_seeds=2, backend="gpu")
    b = rfdsm.simulate(s, 50, seed=2, n_seeds=2, backend="gpu")
    assert a.per_seed[1]["test"] == b.per_seed[1]["test"]
