"""The two training time-scales of Bonnaire, Urfin, Biroli & Mezard (2025), ``tau_gen`` and ``tau_mem``.

Gradient flow from ``A = 0`` (``docs/model.md``, "Training time") moves the mode of eigenvalue
``lambda`` of the training Gram ``U`` (``m = inf``) like ``1 - exp(-(2h/psi_p) tau lambda)``.
The time-scale of a mode is here its e-folding time

    tau_lambda = psi_p / (2 h lambda),

the convention of ``docs/model.md`` ("Time-scales").  Bonnaire et al. ("Why diffusion models
don't memorize", Sec. 3, the paragraph after Thm. 3.2 and the caption of Fig. 5) write the
time-scale of a mode as ``psi_p/(Delta_t lambda)`` (``Delta_t = h``), twice ``tau_lambda`` in
the same time ``tau = k eta / d^2``: the time at which the mode has relaxed to ``exp(-2)``.
The two they name:

* ``tau_mem = tau_lambda`` at ``lambda_min``, the left edge of the bulk ``rho_1`` of ``U`` (their
  Thm. 3.2: ``s_t^2 + v_t^2 (1 - sqrt(psi_p/psi_n))^2``, here ``s_t^2 = kappa_i^2``,
  ``v_t^2 = kappa_s^2`` of docs/theory.md (T2)): train and test errors separate, the
  generalisation loss ``L_gen = test - train`` grows (memorisation).  ``rho_1`` is the ``n - d``
  eigenvalues of the training points' features between the atom of ``U`` at ``s_t^2`` (its
  ``p - n - d`` null directions) and the top ``d`` (``rho_2``): it exists for ``d < n <= p - d``,
  i.e. ``1 < psi_n <= psi_p - 1`` (their Regime I); elsewhere ``tau_mem`` is NaN with
  ``status = "undefined"``: for ``n <= d`` ``rho_1`` has no eigenvalues, and for ``n > p - d``
  ``U`` has no atom, its ``p - d`` modes below ``rho_2`` form one bulk, and the closed form is
  the lower edge of that bulk, not of a memorisation bulk;
* ``tau_gen``, "of order ``1/Delta_t``": the first relaxation, on the bulk ``rho_2`` (the spectrum
  of the population Gram ``mu1^2 W W^T/d + (s_t^2 + v_t^2) I``), after which the score error
  sits on a plateau and ``L_gen`` is still zero.  The paper gives its order only; here it is
  ``tau_lambda`` at the mean eigenvalue of ``rho_2``, ``s_t^2 + v_t^2 + mu1^2 psi_p``, i.e.
  ``tau_gen ~ 1/(2 Delta_t mu1^2)`` for ``psi_p >> 1``.

Each is computed two ways:

* spectral, the definitions above: from Thm. 3.2's closed form (:func:`spectral_timescales`), or
  from the eigenvalues of a simulated ``U`` per seed (:func:`simulated_spectral_timescales`;
  ``rho_1`` is then the ``n - d`` eigenvalues below the top ``d``, which are ``rho_2``);
* from a curve of errors over ``tau`` (:func:`curve_timescales`; per seed for a simulation,
  :func:`timescales`, :func:`timescale_table`), as the paper reads them off its Figs. 2 and 5:
  ``tau_gen`` the first time the score error has made ``1 - gen_drop`` of its drop from the
  curve's first point to its minimum (the RF stand-in for "the FID reaches its minimum");
  ``tau_mem`` the first time ``L_gen >= mem_gap * h`` (``h = 1 - a^2`` is the part of the loss a
  score can learn: ``test - a^2 = h score``, so ``L_gen/h`` is the gap in units of the untrained
  score error; or, with ``mem_frac``, the first time ``L_gen`` reaches that fraction of its
  value at ``tau = inf``, a half-rise time for ``mem_frac = 0.5``).  Between grid points
  ``log tau`` is interpolated linearly.

A time-scale that the curve does not reach (or that lies before its first point) is a
:class:`TimeScale` with ``value = nan`` and a ``status`` and ``message`` saying so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..core import diffusion
from ..core import params
from ..core.status import Outcome

__all__ = ["TimeScale", "curve_timescales", "spectral_timescales",
           "simulated_spectral_timescales", "timescales", "timescale_table", "per_seed_curves",
           "GEN_DROP", "MEM_GAP"]

#: Fraction of the score error's drop still to go at ``tau_gen`` (curve reading).
GEN_DROP = 0.1
#: ``L_gen = test - train`` at ``tau_mem``, in units of ``h`` (curve reading).
MEM_GAP = 1.0
NAMES = ("tau_gen", "tau_mem")


@dataclass(frozen=True)
class TimeScale(Outcome):
    """One time-scale: ``value`` (NaN when not determined), its standard error over seeds
    (``se``, None for one curve or the theory), ``status`` (``"ok"``, ``"not_reached"``,
    ``"at_bound"``, ``"uncertain"``, ``"undefined"``), a ``message`` when not ``ok``, the
    ``source`` it came from and, for several seeds, the ``per_seed`` values."""

    name: str
    value: float
    se: float | None = None
    status: str = "ok"
    message: str = ""
    source: str = ""
    per_seed: tuple = field(default=())

    @property
    def reached(self) -> bool:
        return self.status in ("ok", "uncertain") and math.isfinite(self.value)

    def __str__(self):
        if not self.reached:
            return f"{self.name}: {self.status} ({self.message})"
        se = f" +- {self.se:.3g}" if self.se is not None and math.isfinite(self.se) else ""
        return f"{self.name} = {self.value:.4g}{se} ({self.source})"


def _log_cross(taus, y, thr, rising):
    """First ``tau`` where ``y`` crosses ``thr`` (upwards if ``rising``), ``log tau`` linear in
    between; ``None`` if never, ``-inf`` if already at the first point."""
    hit = np.flatnonzero(y >= thr) if rising else np.flatnonzero(y <= thr)
    if hit.size == 0:
        return None
    i = int(hit[0])
    if i == 0:
        return -math.inf
    y0, y1 = y[i - 1], y[i]
    f = (thr - y0) / (y1 - y0) if y1 != y0 else 1.0
    return float(math.exp(math.log(taus[i - 1]) + f * math.log(taus[i] / taus[i - 1])))


def _finite_curve(taus, *columns):
    taus = np.asarray(taus, dtype=float)
    cols = [np.asarray(c, dtype=float) for c in columns]
    if taus.ndim != 1 or any(c.shape != taus.shape for c in cols):
        raise ValueError("taus and the error columns must be one-dimensional and of equal length")
    keep = np.isfinite(taus)
    taus, cols = taus[keep], [c[keep] for c in cols]
    if taus.size < 3:
        raise ValueError(f"a curve needs at least 3 finite training times, got {taus.size}")
    if np.any(taus <= 0) or np.any(np.diff(taus) <= 0):
        raise ValueError("taus must be positive and strictly increasing")
    if any(not np.all(np.isfinite(c)) for c in cols):
        raise ValueError("the errors of the curve must be finite numbers")
    return taus, cols


def _tau_gen(taus, score, gen_drop, source):
    i_min = int(np.argmin(score))
    drop = score[0] - score[i_min]
    if drop <= 1e-12 * max(abs(score[0]), 1.0):
        return TimeScale("tau_gen", math.nan, status="not_reached", source=source,
                         message="the score error does not decrease along the curve")
    cross = _log_cross(taus, score, score[i_min] + gen_drop * drop, rising=False)
    if cross == -math.inf:  # pragma: no cover - the first point is the reference, above thr
        cross = float(taus[0])
    if i_min == taus.size - 1:
        return TimeScale("tau_gen", cross, status="uncertain", source=source,
                         message=f"the score error still decreases at the last tau = "
                                 f"{taus[-1]:g}: its plateau may lie beyond the curve")
    return TimeScale("tau_gen", cross, source=source)


def _tau_mem(taus, gap, thr, source):
    cross = _log_cross(taus, gap, thr, rising=True)
    if cross is None:
        return TimeScale("tau_mem", math.nan, status="not_reached", source=source,
                         message=f"L_gen = test - train stays below {thr:.3g} up to tau = "
                                 f"{taus[-1]:g} (largest {gap.max():.3g}): no memorisation "
                                 "within the curve")
    if cross == -math.inf:
        return TimeScale("tau_mem", math.nan, status="at_bound", source=source,
                         message=f"L_gen >= {thr:.3g} already at the first tau = {taus[0]:g}; "
                                 "start the curve earlier")
    return TimeScale("tau_mem", cross, source=source)


def curve_timescales(taus, train, test, score, *, h: float, gen_drop: float = GEN_DROP,
                     mem_gap: float = MEM_GAP, mem_frac: float | None = None,
                     source: str = "curve") -> dict:
    """``{"tau_gen": TimeScale, "tau_mem": TimeScale}`` read off one curve (module docstring).

    ``taus`` increasing, ``train``/``test``/``score`` the errors there, ``h = 1 - exp(-2t)``.
    The curve should start before training has moved the errors (``tau`` well below ``1/h``):
    ``tau_gen`` is measured from its first point.  With ``mem_frac`` (in (0, 1)) ``tau_mem`` is
    instead the first time ``L_gen`` reaches that fraction of its value at the end of training
    (the curve's ``tau = inf`` point; without one, its last point, and the status says so): a
    half-rise time for ``mem_frac = 0.5``.  ``tau = inf`` points take no other part."""
    if not (0 < gen_drop < 1):
        raise ValueError(f"gen_drop must be in (0, 1), got {gen_drop!r}")
    if not (mem_gap > 0 and math.isfinite(mem_gap)):
        raise ValueError(f"mem_gap must be a finite number > 0, got {mem_gap!r}")
    if mem_frac is not None and not (0 < mem_frac < 1):
        raise ValueError(f"mem_frac must be None or in (0, 1), got {mem_frac!r}")
    if not (0 < h <= 1):
        raise ValueError(f"h must be in (0, 1], got {h!r}")
    t_all = np.asarray(taus, dtype=float)
    at_inf = np.flatnonzero(np.isinf(t_all))
    end_gap = (float(np.asarray(test, dtype=float)[at_inf[0]] -
                     np.asarray(train, dtype=float)[at_inf[0]]) if at_inf.size else None)
    taus, (train, test, score) = _finite_curve(taus, train, test, score)
    gap = test - train
    if mem_frac is None:
        mem = _tau_mem(taus, gap, mem_gap * h, source)
    else:
        final = gap[-1] if end_gap is None else end_gap
        mem = _tau_mem(taus, gap, mem_frac * final, source) if final > 0 else TimeScale(
            "tau_mem", math.nan, status="not_reached", source=source,
            message="L_gen at the end of training is not positive: no memorisation")
        if end_gap is None and mem.reached:
            mem = TimeScale("tau_mem", mem.value, status="uncertain", source=source,
                            message="no tau = inf point: L_gen at the last tau stands for it")
    return {"tau_gen": _tau_gen(taus, score, gen_drop, source), "tau_mem": mem}


def _combine(name, items, source):
    """The seed mean and standard error of per-seed :class:`TimeScale` ``items``."""
    vals = tuple(float(x.value) for x in items)
    if len(items) == 1:
        x = items[0]
        return TimeScale(name, x.value, None, x.status, x.message, source, vals)
    bad = [x for x in items if not x.reached]
    if bad:
        return TimeScale(name, math.nan, None, bad[0].status,
                         f"{len(bad)} of {len(items)} seeds: {bad[0].message}", source, vals)
    v = np.array(vals)
    status = "uncertain" if any(x.status == "uncertain" for x in items) else "ok"
    msg = next((x.message for x in items if x.message), "")
    return TimeScale(name, float(v.mean()), float(v.std(ddof=1) / math.sqrt(v.size)), status,
                     msg, source, vals)


def per_seed_curves(results) -> tuple:
    """``(taus, {seed: (train, test, score)})`` of a list of :class:`rfdsm.Result` along one
    ``tau`` curve (one setting apart from ``tau``, one evaluator), sorted by ``tau``; the
    theory (or a single curve) is the one "seed" ``None``."""
    results = sorted(results, key=lambda r: r.setting.tau)
    if len({r.setting.replace(tau=1.0) for r in results}) != 1:
        raise ValueError("the results must differ in tau only")
    if len({r.evaluator for r in results}) != 1:
        raise ValueError("the results must come from one evaluator")
    taus = np.array([r.setting.tau for r in results])
    if all(r.per_seed for r in results):
        seeds = [p["seed"] for p in results[0].per_seed]
        curves = {}
        for k, s in enumerate(seeds):
            rows = [r.per_seed[k] for r in results]
            if any(row["seed"] != s for row in rows):
                raise ValueError("the results do not hold the same seeds at every tau")
            curves[s] = tuple(np.array([row[e] for row in rows]) for e in ("train", "test", "score"))
        return taus, curves
    return taus, {None: tuple(np.array([getattr(r, e) for r in results])
                              for e in ("train", "test", "score"))}


def timescales(results, *, gen_drop: float = GEN_DROP, mem_gap: float = MEM_GAP,
               mem_frac: float | None = None) -> dict:
    """:func:`curve_timescales` of a ``tau`` curve of :class:`rfdsm.Result` (e.g. from
    :func:`rfdsm.simulate.simulate_tau_curve`, or the theory at each ``tau``): per seed for a
    simulation, then the seed mean and its standard error."""
    taus, curves = per_seed_curves(results)
    h = results[0].setting.h
    src = results[0].evaluator
    per = [curve_timescales(taus, *c, h=h, gen_drop=gen_drop, mem_gap=mem_gap,
                            mem_frac=mem_frac, source=src)
           for c in curves.values()]
    return {name: _combine(name, [p[name] for p in per], src) for name in NAMES}


def _check_bonnaire(setting):
    if setting.m != math.inf:
        raise ValueError(f"the spectral time-scales are those of the m = inf Gram U (Bonnaire "
                         f"et al.); got m = {setting.m:g}")
    if setting.data_model.name != "isotropic" or getattr(setting, "psi_d", 1.0) != 1.0:
        raise ValueError("the spectral time-scales are written for isotropic data only")


def spectral_timescales(setting) -> dict:
    """``tau_gen``, ``tau_mem`` from Thm. 3.2 of Bonnaire et al. (module docstring): the
    e-folding time ``psi_p/(2 h lambda)`` at ``lambda_min(rho_1) = kappa_i^2 + kappa_s^2
    (1 - sqrt(psi_p/psi_n))^2`` and at the mean of ``rho_2``, ``kappa_i^2 + kappa_s^2 + mu1^2
    psi_p``.  ``tau_mem`` is NaN (``status = "undefined"``, the message says why) unless
    ``1 < psi_n <= psi_p - 1``, where ``rho_1`` exists.  The formula is the ``psi_p, psi_n >> 1``
    limit; the message says when the setting is far from it."""
    from ..theory.common import ge_constants

    _check_bonnaire(setting)
    k = ge_constants(setting)
    pp, pn, h = setting.psi_p, setting.psi_n, setting.h
    lam1 = k.kappa_i2 + k.kappa_s2 * (1.0 - math.sqrt(pp / pn)) ** 2
    lam2 = k.kappa_i2 + k.kappa_s2 + k.mu1 ** 2 * pp
    notes = []
    if min(pp, pn) < 4:
        notes.append(f"Thm. 3.2 is the psi_p, psi_n >> 1 limit (psi_p = {pp:g}, psi_n = {pn:g})")
    status = "uncertain" if notes else "ok"
    msg = "; ".join(notes)
    gen = TimeScale("tau_gen", pp / (2.0 * h * lam2), None, status, msg, "spectral")
    if not 1.0 < pn <= pp - 1.0:
        why = ("rho_1 has n - d <= 0 eigenvalues (psi_n <= 1)" if pn <= 1.0
               else "U has no atom (psi_n > psi_p - 1) and the closed form is the lower edge "
                    "of one bulk of all p - d modes below rho_2")
        return {"tau_gen": gen, "tau_mem": TimeScale(
            "tau_mem", math.nan, None, "undefined",
            f"the memorisation bulk rho_1 of Thm. 3.2 (the n - d eigenvalues of U between its "
            f"atom and the top d) exists for 1 < psi_n <= psi_p - 1; here psi_n = {pn:g}, "
            f"psi_p = {pp:g}: {why}", "spectral")}
    return {"tau_gen": gen,
            "tau_mem": TimeScale("tau_mem", pp / (2.0 * h * lam1), None, status, msg, "spectral")}


def simulated_spectral_timescales(setting, d: int, seed: int = 0, n_seeds: int = 1) -> dict:
    """The spectral time-scales (the e-folding time ``psi_p/(2 h lambda)``, module docstring)
    from the eigenvalues of the simulated ``U`` (one ``eigh`` of a ``p x p`` matrix per seed,
    :func:`rfdsm.simulate.spectrum.gram_eigenvalues`): ``rho_2`` the top ``d`` eigenvalues (the
    directions of ``W``), ``rho_1`` the ``n - d`` below them, so ``lambda_min(rho_1)`` is the
    ``(p - n)``-th smallest.  Needs ``d < n <= p - d`` (Regime I of Thm. 3.2: the atom at
    ``s_t^2`` below); else ``status = "undefined"``."""
    from ..simulate.spectrum import gram_eigenvalues

    _check_bonnaire(setting)
    n, p = setting.sizes(d)
    src = f"spectral, simulated d = {int(d)}"
    if not (d < n <= p - d):
        msg = f"needs d < n <= p - d for the bulk rho_1 (d = {d}, n = {n}, p = {p})"
        return {name: TimeScale(name, math.nan, None, "undefined", msg, src) for name in NAMES}
    gen, mem = [], []
    for s in range(int(seed), int(seed) + int(n_seeds)):
        ev = gram_eigenvalues(setting, d, s)
        rate = 2.0 * setting.h / setting.psi_p  # of a mode per unit eigenvalue (docs/model.md)
        gen.append(TimeScale("tau_gen", 1.0 / (rate * float(ev[p - d:].mean())), source=src))
        mem.append(TimeScale("tau_mem", 1.0 / (rate * float(ev[p - n])), source=src))
    return {"tau_gen": _combine("tau_gen", gen, src), "tau_mem": _combine("tau_mem", mem, src)}


def timescale_table(df, *, gen_drop: float = GEN_DROP, mem_gap: float = MEM_GAP,
                    mem_frac: float | None = None, spectral: bool = True):
    """One row per evaluator x setting (apart from ``tau``) x ``d`` of a result table with a
    ``tau`` axis: ``tau_gen``, ``tau_mem`` (mean over seeds), their ``_se`` and ``_status``,
    ``n_seeds``; with ``spectral``, Thm. 3.2's ``tau_gen_spectral``, ``tau_mem_spectral`` (for
    ``m = inf``, isotropic rows; ``tau_mem_spectral`` NaN where ``rho_1`` does not exist).
    Simulation curves are read per seed (column ``seed``)."""
    import pandas as pd

    from ..core.setting import Setting

    df = _normalised(df)
    keys = ["evaluator", *[c for c in params.names() if c != "tau"], "d"]
    rows = []
    for key, sub in df.groupby(keys, dropna=False, sort=True):
        rec = dict(zip(keys, key))
        seeds = sub["seed"] if "seed" in sub and sub["seed"].notna().any() else None
        groups = sub.groupby(seeds, sort=True) if seeds is not None else [(None, sub)]
        per = []
        for _, cur in groups:
            cur = cur.sort_values("tau")
            h = diffusion.h(float(cur["t"].iloc[0]))
            per.append(curve_timescales(cur["tau"], cur["train"], cur["test"], cur["score"],
                                        h=h, gen_drop=gen_drop, mem_gap=mem_gap,
                                        mem_frac=mem_frac,
                                        source=str(rec["evaluator"])))
        rec["n_seeds"] = len(per)
        for name in NAMES:
            ts = _combine(name, [p[name] for p in per], str(rec["evaluator"]))
            rec[name], rec[f"{name}_se"], rec[f"{name}_status"] = ts.value, ts.se, ts.status
        if spectral:
            _add_spectral(rec, Setting)
        rows.append(rec)
    return pd.DataFrame(rows)


def _normalised(df):
    """``df`` with every parameter column (a missing one holding its default, ``Param.fill``),
    ``m``, ``tau`` and the errors as floats (``"inf"`` -> ``inf``)."""
    import pandas as pd

    need = ("evaluator", "psi_n", "psi_p", "t", "tau", "train", "test", "score")
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise ValueError(f"the table lacks the column(s) {missing}")
    out = df.copy()
    for p in params.PARAMS:
        if p.name not in out.columns:
            out[p.name] = p.default
    for c in ("psi_n", "psi_p", "m", "t", "lam", "tau", "d", "train", "test", "score"):
        if c in out:
            out[c] = pd.to_numeric(out[c].replace({"inf": math.inf}), errors="raise").astype(float)
    return out


def _add_spectral(rec, Setting):
    kw = {k: rec[k] for k in params.names() if k in rec and k != "tau" and not _missing(rec[k])}
    try:
        sp = spectral_timescales(Setting(**kw))
    except ValueError:
        rec["tau_gen_spectral"] = rec["tau_mem_spectral"] = math.nan
        return
    rec["tau_gen_spectral"] = sp["tau_gen"].value
    rec["tau_mem_spectral"] = sp["tau_mem"].value


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))
