import math

import numpy as np
import pytest

from rfdsm import Setting


def test_defaults_and_derived():
    s = Setting(psi_n=2, psi_p=4, m="inf", t=0.1, lam=0.01)
    assert s.m == math.inf and s.psi_n == 2.0
    assert s.a == pytest.approx(math.exp(-0.1))
    assert s.h == pytest.approx(1 - math.exp(-0.2))
    assert s.bayes == pytest.approx(s.a ** 2) and s.a ** 2 + s.h == pytest.approx(1.0)
    assert s.sizes(100) == (200, 400)
    assert Setting(1, 1, m=4.0).m == 4 and isinstance(Setting(1, 1, m=4.0).m, int)
    assert Setting(1, 1, lam=0).lam == 0.0  # ridgeless limit is a supported setting


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"psi_n": 0}, "psi_n"), ({"psi_n": -1}, "psi_n"), ({"psi_n": float("nan")}, "psi_n"),
        ({"psi_n": float("inf")}, "psi_n"), ({"psi_n": "abc"}, "psi_n"),
        ({"psi_p": 0}, "psi_p"), ({"psi_p": -2.0}, "psi_p"), ({"psi_p": float("nan")}, "psi_p"),
        ({"m": 0}, "m"), ({"m": -3}, "m"), ({"m": 2.5}, "m"), ({"m": float("nan")}, "m"),
        ({"m": "many"}, "m"), ({"m": True}, "m"),
        ({"t": 0}, "t"), ({"t": -0.1}, "t"), ({"t": float("nan")}, "t"), ({"t": float("inf")}, "t"),
        ({"lam": -1e-3}, "lam"), ({"lam": float("nan")}, "lam"), ({"lam": float("inf")}, "lam"),
        ({"activation": "softplus"}, "activation"), ({"activation": 3}, "activation"),
    ],
)
def test_invalid_values_name_the_parameter(kwargs, name):
    base = {"psi_n": 1.0, "psi_p": 2.0}
    base.update(kwargs)
    with pytest.raises(ValueError) as err:
        Setting(**base)
    msg = str(err.value)
    assert msg.startswith(name + " must be"), msg


def test_sizes_validation():
    s = Setting(0.5, 0.5)
    with pytest.raises(ValueError, match="d must be an integer >= 1"):
        s.sizes(0)
    with pytest.raises(ValueError, match="round"):
        s.sizes(1)  # n = round(0.5) = 0


def test_replace_revalidates():
    s = Setting(1, 2)
    assert s.replace(m=8).m == 8
    with pytest.raises(ValueError, match="^t must be"):
        s.replace(t=-1)
    with pytest.raises(ValueError, match="unknown"):
        s.replace(q=1)


@pytest.mark.parametrize("name", ["psi_n", "psi_p", "t", "lam"])
@pytest.mark.parametrize("flag", [True, np.True_], ids=["bool", "np.bool_"])
def test_booleans_are_not_numbers(name, flag):
    with pytest.raises(ValueError, match=f"^{name} must be"):
        Setting(**{"psi_n": 1.0, "psi_p": 2.0, name: flag})


@pytest.mark.parametrize("name", ["psi_n", "psi_p", "t", "lam", "m"])
def test_integers_beyond_float_range_name_the_parameter(name):
    # float(10**400) raises OverflowError; it must be a ValueError naming the parameter
    with pytest.raises(ValueError, match=f"^{name} must be") as err:
        Setting(**{"psi_n": 1.0, "psi_p": 2.0, name: 10**400})
    assert len(str(err.value)) < 200  # the 401 digits are not printed


@pytest.mark.parametrize("m", [
    2**53 + 1,                 # int: float(m) would silently be 2**53
    str(2**53 + 1),
    float(2**54),              # float above 2**53: not an exact integer
    1e300,
    "1e400",                   # overflows to inf: not a way to write inf
    np.True_,
])
def test_m_must_be_exact(m):
    with pytest.raises(ValueError, match="^m must be"):
        Setting(1.0, 2.0, m=m)
    # the exact values next to the refused ones are kept as they are
    assert Setting(1, 1, m=2**53).m == 2**53 and Setting(1, 1, m=str(2**53)).m == 2**53
    with pytest.raises(ValueError, match="^m must be"):
        Setting(1, 1, m="-inf")
    assert Setting(1, 1, m="1e3").m == 1000 and isinstance(Setting(1, 1, m="1e3").m, int)
    assert Setting(1, 1, m=np.int64(4)).m == 4
    assert Setting(1, 1, m=float("inf")).m == math.inf and Setting(1, 1, m=" Inf ").m == math.inf


def test_sizes_refuses_a_dimension_beyond_float_range():
    with pytest.raises(ValueError, match="^d must be"):
        Setting(1, 1).sizes(10**400)
