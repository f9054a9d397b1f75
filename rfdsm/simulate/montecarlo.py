"""Monte Carlo cross-check of the exact population errors (``simulate(..., mc_test=N)``)."""

from __future__ import annotations

import math

import numpy as np

from ..data import get_data


def mc_errors(act, dr, K: np.ndarray, a: float, h: float, samples: int, block: int = 4096,
              data=None):
    """Monte Carlo test and score errors on fresh ``(x, eps)`` (never the training noise), for
    the readout ``B = -K^T`` and the draw ``dr`` (:class:`rfdsm.simulate.fit.Draw`).
    The score error is against the data model's true score (``-y`` for isotropic data)."""
    data = data or get_data("isotropic")
    W = dr.W
    p, d = W.shape
    rng = np.random.default_rng(dr.mc_seed)
    test_vals, score_vals = [], []
    for start in range(0, samples, block):
        b = min(block, samples - start)
        x = data.sample(b, d, rng)
        eps = rng.standard_normal((b, d))
        y = a * x + math.sqrt(h) * eps
        F = y @ W.T / math.sqrt(d)
        act.apply_(F)
        pred = -(F @ K)  # rows: B phi(y)
        test_vals.append(((pred + eps) ** 2).sum(axis=1) / d)
        score_vals.append(((pred / math.sqrt(h) - data.true_score(y, h)) ** 2).sum(axis=1) / d)
    tv, sv = np.concatenate(test_vals), np.concatenate(score_vals)
    se = lambda v: float(v.std(ddof=1) / math.sqrt(v.size)) if v.size > 1 else float("nan")  # noqa: E731
    return {"test_mc": float(tv.mean()), "test_mc_se": se(tv),
            "score_mc": float(sv.mean()), "score_mc_se": se(sv), "mc_samples": samples}
