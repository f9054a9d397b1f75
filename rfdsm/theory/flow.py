"""Errors at a finite training time ``tau`` (gradient flow), docs/theory.md Sec. 10.

The fit at time ``tau`` is a sum of resolvents at complex ridges (eq. (D2),
:mod:`rfdsm.theory.flow_poles`); the errors are sums of one- and two-resolvent deterministic
equivalents over those ridges (:mod:`rfdsm.theory.flow_traces`).  Here:

1. the fixed points of the ridge equations at every ridge ``z_k = -lam - s_k/(c tau)``
   (``m = inf``: eq. (T13); finite ``m``, ``m = 1`` included: eq. (F4), rescaled by (F5) above
   the interpolation threshold), continued by Newton's method along ``tau`` from a training
   time short enough that every ``z_k`` lies far outside the spectrum, where the fixed point is
   that of ``z = inf`` (eq. (D12)).  The path of each ``z_k`` is a ray that never meets the
   real axis, so the Stieltjes branch is kept; a Newton step that leaves it (the sign
   conditions of :mod:`rfdsm.theory.stieltjes`) is halved, a rung that fails is split.
   A whole ``tau`` curve is one path: everything except these fixed points and the weights is
   independent of ``tau`` and computed once;
2. the Marchenko-Pastur rule is doubled until train and test agree to ``quad_tol``; the
   answer uses ``poles[0]`` contour points and is compared with ``poles[1]`` (the pole error);
   the GE constants are probed as for ``tau = inf``; physical bounds as everywhere.
"""

from __future__ import annotations

import math

import numpy as np

from .common import (Solution, constants_need_probe, constants_warning, ge_constants,
                     ge_spectrum, physical_bounds)
from .diagnostics import flow_limits
from .driver import verdict
from .flow_poles import DEFAULT_POLES, filter_error, talbot_half
from .flow_traces import finite_m_errors, minf_errors
from .stieltjes import _FiniteM, _Minf, _Rule as _MPRule, spectral_scale

__all__ = ["solve_flow", "solve_flow_curve"]

_FAR = 10.0  # first rung: every |z_k| >= _FAR (spectral scale + lam)
_RATIO = 4.0  # c tau grows by at most this per rung
_ROUGH = 1e-6  # Newton tolerance on rungs that only carry the roots (as in stieltjes.descend)
_SPLITS = 12  # a failed rung is split in log(c tau) at most this many times
#: ``c tau`` times the spectral scale beyond which ``exp(-c tau u)`` is below rounding for every
#: ``u`` double precision tells apart from 0 on that scale: a longer time is solved at this one
#: and must then equal the minimiser (``tau = inf``), or it is not converged
_CT_SCALE_MAX = 1e15
#: and below which the errors are the untrained fit's: a shorter time is solved at this one
_CT_SCALE_MIN = 1e-250  # its S1 (linear in tau there) scaled; ridges s/(c tau) would overflow


def _equations(setting, sp, probe: bool):
    """The fixed point of :mod:`rfdsm.theory.stieltjes` at complex ``z`` on the rule ``sp``
    (its constants displaced by their error bounds when ``probe``)."""
    rule = _MPRule(setting, sp)
    k = ge_constants(setting)
    if probe:
        k = k.probe()
        m1 = k.mu1 * k.mu1
        rule.Sig, rule.C = (m1, k.mu_star2), (m1 * setting.a ** 2, k.kappa_s2)
        rule.Sc = (m1 * setting.h, k.kappa_i2)
    r = setting.psi_p / setting.psi_n
    if setting.m == math.inf:
        return _Minf(rule, r)
    p_eff = min(setting.psi_p, 1.0) if k.mu_star2 == 0.0 else setting.psi_p  # as in (F12)
    return _FiniteM(rule, r, int(setting.m), p_eff > setting.m * setting.psi_n)


def _newton(eqs, u, z, tol, max_iter):
    """Newton's method at ``z`` (flat arrays) from ``u``, each step halved while it leaves the
    branch; ``(u, ok, last relative step, steps)``."""
    u = u.copy()
    done = np.zeros(z.shape, dtype=bool)
    bad_any = np.zeros(z.shape, dtype=bool)
    last = np.full(z.shape, np.inf)
    steps = 0
    for _ in range(max_iter):
        idx = np.flatnonzero(~done)
        if idx.size == 0:
            break
        steps += 1
        old, zi = u[..., idx], z[idx]
        new, rel = eqs.step(old, zi)
        full = np.ones(idx.size, dtype=bool)
        for _ in range(30):
            off = ~eqs.valid(new, zi) & np.isfinite(rel)
            if not off.any():
                break
            full &= ~off
            new[..., off] = old[..., off] + 0.5 * (new[..., off] - old[..., off])
            rel = np.where(off, 0.5 * rel, rel)
        bad = ~np.isfinite(rel) | ~eqs.valid(new, zi)
        u[..., idx] = np.where(bad, old, new)
        last[idx] = rel
        done[idx[((rel <= tol) & full) | bad]] = True
        bad_any[idx[bad]] = True
    return u, done & ~bad_any, last, steps


def _rungs(targets, far):
    """``c tau`` values of the path: geometric from ``far`` (if below the first target) through
    every target, ratio <= :data:`_RATIO`; ``(values, index of the target or -1)``."""
    vals, marks, prev = [], [], min(far, targets[0])
    if far < targets[0]:
        vals.append(far)
        marks.append(-1)
    for i, t in enumerate(targets):
        n = max(1, math.ceil(math.log(t / prev) / math.log(_RATIO) - 1e-9)) if t > prev else 1
        for j in range(1, n):
            vals.append(prev * (t / prev) ** (j / n))
            marks.append(-1)
        vals.append(t)
        marks.append(i)
        prev = t
    return vals, marks


def _fixed_points(setting, sp, eqs, ctaus, s_all, tol, max_iter):
    """The fixed points at ``z = -lam - s/(c tau)`` for every target ``c tau`` (sorted,
    ascending) and contour point ``s``: ``(states, ok, residual, steps)``, states with a
    leading target axis before the pole axis."""
    lam = setting.lam
    scale = spectral_scale(setting, sp)
    far = float(np.abs(s_all).min()) / (_FAR * (scale + lam))
    vals, marks = _rungs(list(ctaus), far)
    zof = lambda ct: -lam - s_all / ct  # noqa: E731
    u = eqs.start(zof(vals[0]))
    shape = (len(ctaus),) + u.shape
    out = np.zeros(shape, dtype=complex)
    ok = np.zeros(len(ctaus), dtype=bool)
    res = np.full(len(ctaus), np.inf)
    steps, prev_ct = 0, None
    for ct, mark in zip(vals, marks):
        tol_here = tol if mark >= 0 else _ROUGH
        u_new, good, last, n = _advance(eqs, u, prev_ct, ct, zof, tol_here, max_iter)
        steps += n
        u, prev_ct = u_new, ct
        if mark >= 0:
            out[mark], ok[mark] = u, bool(good.all())
            res[mark] = float(last.max())
    if out.ndim == 3:  # finite m: (target, 2, pole) -> (2, target, pole)
        out = np.moveaxis(out, 1, 0)
    return out, ok, res, steps


def _advance(eqs, u, ct0, ct1, zof, tol, max_iter):
    """From the roots ``u`` at ``ct0`` to ``ct1`` (``ct0 = None``: ``u`` is the start at
    ``z = inf``), splitting a step in ``log(c tau)`` where Newton's method fails;
    ``(u, ok per pole, last relative step, Newton steps)``."""
    path, steps, splits = [ct1], 0, 0
    fine = np.ones(np.shape(zof(ct1)), dtype=bool)
    while True:
        ct = path[-1]
        u_new, good, last, n = _newton(eqs, u, zof(ct), tol if len(path) == 1 else _ROUGH,
                                       max_iter)
        steps += n
        if not good.all() and ct0 is not None and splits < _SPLITS:
            splits += 1
            path.append(math.sqrt(ct0 * ct))
            continue
        u, ct0 = u_new, ct
        path.pop()
        if not path:
            return u, fine & good, last, steps
        fine &= good  # an intermediate rung given up on taints the roots carried on


def _warm_solve(eqs, warm, z, tol, max_iter):
    """Newton's method at every ``z`` (targets x poles) at once from the roots ``warm`` of
    another rule; ``(states, ok per target, residual per target, steps)``."""
    flat = warm.reshape(warm.shape[:-2] + (-1,))
    u, ok, last, steps = _newton(eqs, flat, z.ravel(), tol, max_iter)
    n_t = z.shape[0]
    return (u.reshape(warm.shape), ok.reshape(n_t, -1).all(axis=1),
            last.reshape(n_t, -1).max(axis=1), steps)


class _OnRule:
    """The fixed points of every target ``c tau`` and pole on one Marchenko-Pastur rule, and
    the errors from them (eq. (D5)) with the ``N``-point contour."""

    def __init__(self, setting, ctaus, nodes, poles, tol, max_iter, warm=None, probe=False):
        self.setting, self.ctaus, self.poles = setting, np.asarray(ctaus), poles
        self.nodes = nodes
        self.sp = ge_spectrum(setting, nodes, probe=probe)
        self.eqs = _equations(setting, self.sp, probe)
        s_all = np.concatenate([talbot_half(N)[0] for N in poles])
        self.z = -setting.lam - s_all[None, :] / self.ctaus[:, None]
        self.steps, self._errors = 0, {}
        if warm is not None:
            self.states, self.ok, self.res, self.steps = _warm_solve(self.eqs, warm, self.z,
                                                                     tol, max_iter)
            if self.ok.all():
                return
        states, ok, res, steps = _fixed_points(setting, self.sp, self.eqs, self.ctaus, s_all,
                                               tol, max_iter)
        self.steps += steps
        if warm is not None:  # keep the warm-started roots where they converged
            keep = self.ok
            states[..., keep, :] = self.states[..., keep, :]
            ok, res = ok | keep, np.where(keep, self.res, res)
        self.states, self.ok, self.res = states, ok, res

    def subset(self, idx):
        """The states of the targets ``idx``, as ``warm`` for another rule."""
        return self.states[..., idx, :]

    def errors(self, which=0, idx=None):
        """``(2, n)`` array of train and test with contour ``poles[which]`` (all targets,
        or those of ``idx``); computed once per contour."""
        if which not in self._errors:
            N = self.poles[which]
            s, beta = talbot_half(N)
            offset = sum(n // 2 for n in self.poles[:which])
            cols = slice(offset, offset + s.size)
            z, rule = self.z[:, cols], self.eqs.rule
            if self.setting.m == math.inf:
                out = minf_errors(rule, self.eqs, self.states[:, cols], z, beta, self.setting)
            else:
                out = finite_m_errors(rule, self.eqs, self.states[:, :, cols], z, beta,
                                      self.setting)
            self._errors[which] = np.array(out)
        out = self._errors[which]
        return out if idx is None else out[:, np.asarray(idx)]


#: Errors below this are compared absolutely (to ``quad_tol * FLOW_FLOOR``): the contour sums
#: carry an absolute rounding of ~1e-15 (terms of order one whose sum is the error, e.g. the
#: train error ~ 0 of an interpolating fit at long times), which a relative comparison of a
#: train error of 1e-14 would call unresolved (docs/theory.md, Sec. 10.5).
FLOW_FLOOR = 1e-4


def _change(a, b):
    """Largest change of ``(train, test)`` per ``tau`` (columns of ``a``, ``b``): relative,
    absolute below :data:`FLOW_FLOOR`; ``inf`` when either is not finite."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    with np.errstate(invalid="ignore"):
        ch = np.max(np.abs(a - b) / np.maximum(np.abs(a), FLOW_FLOOR), axis=0)
    return np.where(np.all(np.isfinite(a), axis=0) & np.all(np.isfinite(b), axis=0), ch, np.inf)


def _refined(setting, ctaus, nodes, max_nodes, quad_tol, poles, tol, max_iter):
    """Double the rule until train and test (contour ``poles[0]``) agree with the previous
    rule to ``quad_tol`` at every ``tau``; the unresolved ones go on alone, warm-started from
    the roots of the previous rule.  Per ``tau``: ``(rule, index in it)`` of its last rule,
    the quadrature change and the node count."""
    n_t = len(ctaus)
    where, qerr, used = [None] * n_t, np.full(n_t, np.inf), np.zeros(n_t, dtype=int)
    todo = np.arange(n_t)
    prev = _OnRule(setting, ctaus, nodes, poles, tol, max_iter)
    prev_err, warm = prev.errors(), prev.states
    while todo.size:
        nodes *= 2
        cur = _OnRule(setting, [ctaus[i] for i in todo], nodes, poles, tol, max_iter, warm=warm)
        err = cur.errors()
        ch = _change(err[:2], prev_err[:2])
        stop = (ch <= quad_tol) | (nodes >= max_nodes)
        for j in np.flatnonzero(stop):
            where[todo[j]] = (cur, j)
            qerr[todo[j]], used[todo[j]] = ch[j], nodes
        keep = np.flatnonzero(~stop)
        prev_err, warm, todo = err[:, keep], cur.subset(keep), todo[keep]
    return where, qerr, used


def _constants_effect(setting, ctaus, where, poles, tol, max_iter):
    """Relative change of train and test when the GE constants move by their error bounds
    (as :func:`rfdsm.theory.common.constants_effect`), per ``tau``; 0 when they are exact or
    do not enter (``m = 1``: only ``Sigma = C + Sc`` does)."""
    out = np.zeros(len(ctaus))
    if setting.m == 1 or not constants_need_probe(ge_constants(setting)):
        return out
    for rule in {id(r): r for r, _ in where}.values():
        idx = [i for i, (r, _) in enumerate(where) if r is rule]
        js = [where[i][1] for i in idx]
        moved = _OnRule(setting, rule.ctaus[js], rule.nodes, poles, tol, max_iter,
                      warm=rule.subset(js), probe=True)
        out[idx] = _change(moved.errors()[:2], rule.errors(idx=js)[:2])
    return out


_CONTROLLER = None


def _one_blas_thread():
    """The products here are small (poles x nodes per time): a second BLAS thread does not
    pay for its synchronisation, and on a loaded machine its spinning made a 200-point curve
    15x slower (benchmarks/theory_flow.py)."""
    global _CONTROLLER
    if _CONTROLLER is None:
        from threadpoolctl import ThreadpoolController

        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=1, user_api="blas")


def solve_flow_curve(settings, **options) -> list[Solution]:
    """Limiting errors at finite training times: ``settings`` equal up to ``tau`` (all
    finite), one :class:`Solution` each, in their order; one continuation path for all.

    ``options``: ``tol``, ``max_iter`` (Newton), ``nodes``, ``max_nodes``, ``quad_tol`` (the
    Marchenko-Pastur rule, as for ``tau = inf``), ``poles`` (contour points of the answer and
    of the check, even and ``>= 4``; their difference is ``diagnostics["pole_error"]`` and must
    be ``<= quad_tol`` for ``converged``).
    """
    with _one_blas_thread():
        return _solve_curve(list(settings), **options)


def _solve_curve(settings, *, tol=1e-13, max_iter=60, nodes=400, quad_tol=1e-9,
                 max_nodes=12800, poles=DEFAULT_POLES):
    base = settings[0]
    taus = [float(s.tau) for s in settings]
    if any(not (0 < t < math.inf) for t in taus):
        raise ValueError(f"tau must be finite and > 0 here, got {taus!r}")
    if any(s.replace(tau=base.tau) != base for s in settings):
        raise ValueError("solve_flow_curve: the settings must differ in tau only")
    poles = tuple(int(N) for N in poles)
    c = 2.0 * base.h / base.psi_p  # docs/model.md
    tau_cap = _CT_SCALE_MAX / (c * spectral_scale(base, ge_spectrum(base, nodes)))
    beyond = [t > tau_cap for t in taus]
    taus = [min(max(t, tau_cap * _CT_SCALE_MIN / _CT_SCALE_MAX), tau_cap) for t in taus]
    order = np.argsort(taus, kind="stable")
    uniq, inv = np.unique(np.asarray(taus)[order], return_inverse=True)
    ctaus = list(c * uniq)
    where, qerr, used = _refined(base, ctaus, nodes, max_nodes, quad_tol, poles, tol, max_iter)
    kerr = _constants_effect(base, ctaus, where, poles, tol, max_iter)
    sols = [None] * len(settings)
    for rule in {id(r): r for r, _ in where}.values():  # each final rule, its targets at once
        us = [u for u, (r, _) in enumerate(where) if r is rule]
        js = [where[u][1] for u in us]
        main, check = rule.errors(0, idx=js), rule.errors(1, idx=js)
        for k, u in enumerate(us):
            fin = {"errors": main[:, k], "check": check[:, k], "ok": rule.ok[js[k]],
                   "residual": rule.res[js[k]], "steps": rule.steps, "sp": rule.sp,
                   "tau": float(uniq[u])}
            for pos in np.flatnonzero(inv == u):
                pos = order[pos]
                sols[pos] = _judge(settings[pos], fin, qerr[u], kerr[u], used[u], poles,
                                   quad_tol)
    return [_beyond_resolution(s, sol, tau_cap, quad_tol) if far else sol
            for s, sol, far in zip(settings, sols, beyond)]


def _beyond_resolution(setting, sol, tau_cap, quad_tol) -> Solution:
    """A ``tau`` past ``tau_cap`` (:data:`_CT_SCALE_MAX`): the flow was solved at ``tau_cap``;
    it is the answer when it equals the minimiser there, else the time is not resolved
    (e.g. ridgeless at the interpolation threshold, where the errors grow without bound)."""
    from .routing import route

    ridge = route(setting.replace(tau=math.inf)).solver(setting.replace(tau=math.inf))
    diag = dict(sol.diagnostics, solved_at_tau=tau_cap)
    same = (ridge.converged and sol.converged and math.isfinite(ridge.test)
            and _change(np.array([[sol.train], [sol.test]]),
                        np.array([[ridge.train], [ridge.test]]))[0] <= quad_tol)
    if same:
        return Solution(sol.train, sol.test, sol.score, True, sol.residual, sol.iterations,
                        sol.state, diag)
    diag["warning"] = "; ".join(filter(None, (
        f"tau = {setting.tau:g} is beyond what double precision resolves here (c tau times "
        f"the spectral scale > {_CT_SCALE_MAX:g}); at tau = {tau_cap:.3g} the flow has not "
        f"reached the minimiser (test {sol.test:.6g} vs {ridge.test:.6g} at tau = inf)",
        sol.diagnostics.get("warning"))))
    return Solution(sol.train, sol.test, sol.score, False, sol.residual, sol.iterations,
                    sol.state, diag)


def _judge(setting, fin, qerr, kerr, nodes, poles, quad_tol) -> Solution:
    """Bounds, warnings and ``converged`` for one ``tau`` (as the driver's ``_judge``)."""
    train, test, s1 = (float(v) for v in fin["errors"])
    perr = float(_change(np.array([[train], [test]]), np.asarray(fin["check"])[:2, None])[0])
    train, warning = physical_bounds(setting, train, test)
    finite = math.isfinite(train) and math.isfinite(test)
    diag = {"solver": "finite-tau two-resolvent equivalents (docs/theory.md eqs. D1-D12)",
            "method": "talbot contour + continuation in tau", "nodes": int(nodes),
            "quadrature_error": float(qerr), "poles": poles[0], "pole_check": poles[1],
            "pole_error": perr, "filter_error": filter_error(poles[0]),
            "fixed_point_ok": bool(fin["ok"]), "newton_steps": int(fin["steps"])}
    if setting.m != 1:
        diag.update(constants_warning(setting, float(kerr), quad_tol, fin["sp"]))
    if not perr <= quad_tol:
        warning = "; ".join(filter(None, (warning, f"the {poles[0]}- and {poles[1]}-pole "
                                          f"filters differ by {perr:.2g} > {quad_tol:g}")))
    if warning:
        diag["warning"] = "; ".join(filter(None, (warning, diag.get("warning"))))
    residual = max(float(fin["residual"]), float(qerr), perr, float(kerr))
    converged = verdict(done=fin["ok"], residual=float(fin["residual"]), finite=finite,
                        diag=diag, quadrature_error=qerr, quad_tol=quad_tol)
    score = (test - setting.bayes) / setting.h
    if setting.tau < fin["tau"]:  # solved at the shortest resolved time (_CT_SCALE_MIN)
        s1, diag["solved_at_tau"] = s1 * (setting.tau / fin["tau"]), fin["tau"]
    diag["metrics"] = flow_limits(setting, train, score, s1)
    return Solution(train, test, float(score), converged, residual, int(fin["steps"]),
                    {"tau": setting.tau, "nodes": int(nodes)}, diag)


def solve_flow(setting, warm=None, **options) -> Solution:
    """Limiting ``train``, ``test``, ``score`` at the finite training time ``setting.tau``
    (``warm`` is accepted for the common interface and not needed: the continuation starts
    from ``z = inf``)."""
    return solve_flow_curve([setting], **options)[0]
