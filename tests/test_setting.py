import math

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
