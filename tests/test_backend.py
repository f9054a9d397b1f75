"""Precision option, the device code path (run on NumPy arrays) and the fast kernels."""

import math

import numpy as np
import pytest

import rfdsm
from rfdsm.simulate import fit, gpu, mehler, simulate_seed

ERR = ("train", "test", "score")


def _rel(a, b):
    return max(abs(a[k] / b[k] - 1.0) for k in ERR)


@pytest.mark.parametrize("m", [3, math.inf])
@pytest.mark.parametrize("d", [40, 80])
def test_float32_close_to_float64(m, d):
    # Same draws (noise is drawn in float64 and rounded), so only rounding separates them.
    # float32 has eps ~ 6e-8; with lam = 0.05 the solve amplifies that by at most ~ |S| / lam
    # ~ 20, and the measured gap is ~ 1e-7, so 2e-5 is a loose but meaningful bound (a wrong
    # float32 path -- e.g. other noise -- moves the errors by O(1/sqrt(d)) ~ 1e-1).
    s = rfdsm.Setting(2, 3, m=m, t=0.2, lam=0.05)
    r64 = rfdsm.simulate(s, d, seed=4)
    r32 = rfdsm.simulate(s, d, seed=4, dtype=np.float32)
    assert r32.diagnostics["dtype"] == "float32" and r64.diagnostics["dtype"] == "float64"
    for k in ERR:
        assert getattr(r32, k) == pytest.approx(getattr(r64, k), rel=2e-5)
    assert any(getattr(r32, k) != getattr(r64, k) for k in ERR)  # float32 really was used


def test_dtype_strings_and_default():
    s = rfdsm.Setting(2, 2, m=2)
    a = rfdsm.simulate(s, 20, seed=1)
    b = rfdsm.simulate(s, 20, seed=1, dtype="float64")
    assert (a.train, a.test) == (b.train, b.test)
    assert rfdsm.simulate(s, 20, seed=1, dtype="float32").diagnostics["dtype"] == "float32"


@pytest.mark.parametrize("bad", [np.float16, np.int64, "double precision", None, complex])
def test_bad_dtype(bad):
    with pytest.raises(ValueError, match="dtype"):
        rfdsm.simulate(rfdsm.Setting(1, 1), 10, dtype=bad)


@pytest.mark.parametrize("bad", ["tpu", "GPU", "", None])
def test_bad_backend(bad):
    with pytest.raises(ValueError, match="backend"):
        rfdsm.simulate(rfdsm.Setting(1, 1), 10, backend=bad)


@pytest.mark.skipif(gpu.available(), reason="a GPU is available here")
def test_gpu_backend_without_gpu_is_a_clear_error():
    with pytest.raises(ValueError, match="backend='gpu' needs CuPy"):
        rfdsm.simulate(rfdsm.Setting(1, 1), 10, backend="gpu")


@pytest.mark.parametrize("activation", ["tanh", "erf", "relu", "linear"])
@pytest.mark.parametrize("m", [2, math.inf])
@pytest.mark.parametrize("lam", [0.01, 0.0])
def test_device_code_path_matches_cpu(activation, m, lam):
    # The GPU algorithm run on NumPy arrays, with small blocks (several chunks): same draws,
    # so it must agree with the CPU backend to rounding, amplified by the solve
    # (ridgeless: by the smallest retained eigenvalue) -- 1e-9 is far above what we see (1e-13).
    s = rfdsm.Setting(2, 3, m=m, t=0.3, lam=lam, activation=activation)
    cpu = simulate_seed(s, 50, 5)
    dev = gpu.simulate_seed(s, 50, 5, ops=gpu.numpy_ops(), block_bytes=150_000)
    assert dev["diagnostics"]["n_chunks"] > 1
    assert _rel(dev, cpu) < 1e-9


def test_adaptive_series_order_matches_full_order(monkeypatch):
    # The per-block order may stop early only when the tail bound says the rest is < 1e-13.
    s = rfdsm.Setting(2, 4, m=math.inf, t=0.1, lam=0.01)
    fast = simulate_seed(s, 120, 2)
    assert fast["diagnostics"]["hermite_order"] < fast["diagnostics"]["hermite_order_cap"]
    assert fast["diagnostics"]["series_bound"] <= mehler.SERIES_TOL
    monkeypatch.setattr(mehler, "adaptive_order", lambda rho_max, K, residual, scale: K)
    full = simulate_seed(s, 120, 2)
    assert full["diagnostics"]["hermite_order"] == full["diagnostics"]["hermite_order_cap"]
    assert _rel(fast, full) < 1e-11


def test_horner_accumulate_matches_direct_sum():
    rng = np.random.default_rng(0)
    p, c, K = 30, 7, 6
    A = rng.standard_normal((p, 50))
    _, rho, _ = mehler.correlations(A)
    beta = rng.standard_normal((K + 1, p, c))
    direct = sum((rho**k) * (beta[k] @ beta[k].T) for k in range(K + 1)) * 0.3
    for b in (beta, beta[:, :, :1]):
        out = np.ones((p, p))
        mehler.accumulate(out, rho, b, 0.3)
        ref = 1.0 + (direct if b.shape[2] == c else
                     sum((rho**k) * np.outer(b[k, :, 0], b[k, :, 0]) for k in range(K + 1)) * 0.3)
        np.testing.assert_allclose(out, ref, rtol=1e-13, atol=1e-13)


def test_residual_profile_and_order():
    rng = np.random.default_rng(1)
    beta = rng.standard_normal((5, 4, 3)) * 0.1
    m2 = (beta**2).sum(axis=0) + 0.5
    R = mehler.residual_profile(beta, m2)
    ref = (m2[None] - np.cumsum(beta**2, axis=0)).reshape(5, -1).max(axis=1)
    np.testing.assert_allclose(R, ref, rtol=1e-14)
    assert mehler.adaptive_order(0.5, 4, np.array([1.0, 0.1, 1e-20, 0.0, 0.0]), 1.0) == 2
    assert mehler.adaptive_order(0.99, 4, np.ones(5), 1.0) == 4  # never beyond the cap


@pytest.mark.parametrize("name", ["tanh", "erf", "relu", "linear"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_apply_shifted_equals_repeat_then_apply(name, dtype):
    act = rfdsm.get_activation(name)
    rng = np.random.default_rng(2)
    g = rng.standard_normal((12, 9)).astype(dtype)
    shift = rng.standard_normal((4, 9)).astype(dtype)
    ref = act.fn((g + np.repeat(shift, 3, axis=0)).astype(np.float64))
    out = act.apply_shifted_(g.copy(), shift, 3)
    tol = 1e-15 if dtype == np.float64 else 1e-6
    np.testing.assert_allclose(out, ref, rtol=tol, atol=tol)


def test_quadrature_kernel_matches_numpy_path():
    # The Numba node evaluation + BLAS projection against the generic NumPy path.
    rng = np.random.default_rng(3)
    mu, s = rng.standard_normal(500) * 2, rng.uniform(0.1, 1.5, 500)
    for name in ("tanh", "erf"):
        act = rfdsm.get_activation(name)
        generic = rfdsm.activations.Activation("g", act.fn)
        b1, m1 = act.moments(mu, s, 8, nodes=64)
        b2, m2 = generic.moments(mu, s, 8, nodes=64)
        np.testing.assert_allclose(b1, b2, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(m1, m2, rtol=1e-12, atol=1e-14)


def test_float32_streaming_keeps_chunk_invariance():
    s = rfdsm.Setting(2, 2, m=3, t=0.2, lam=0.05)
    a = rfdsm.simulate(s, 40, seed=7, dtype=np.float32)
    b = rfdsm.simulate(s, 40, seed=7, dtype=np.float32, chunk=5)
    for k in ERR:
        assert getattr(a, k) == pytest.approx(getattr(b, k), rel=1e-5)


def test_finite_m_memory_block_respected():
    # chunk derived from block_bytes: p x (c m) features of the chosen dtype fit in the block
    s = rfdsm.Setting(2, 2, m=4)
    n, p = s.sizes(30)
    for dt, size in ((np.float64, 8), (np.float32, 4)):
        mom = fit.finite_m_moments(s.sigma, fit.draw(n, p, 30, 0), 4, s.a, s.h, 200_000, dtype=dt)
        assert mom.info["chunk_size"] * 4 * (2 * p + 30) * size <= 200_000
