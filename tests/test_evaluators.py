"""The evaluator registry: a new evaluator is one class and one register_evaluator call.

The toy evaluator here lives outside the package; sweeps, config validation and figures must
take it through the registry's attributes without any edit of rfdsm.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rfdsm import Result
from rfdsm.evaluators import (Evaluator, evaluator_names, get_evaluator, register_evaluator,
                              registered_evaluators, unregister_evaluator)
from rfdsm.sweep import ConfigError, run_sweep
from rfdsm.sweep.config import load_config

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


class Constant(Evaluator):
    """Fixed errors: train = level, test = 2 level, score = 0, for every setting."""

    name, finite_size, style, label = "constant", False, "line", "constant"
    options = ("level",)

    def parse(self, section):
        level = section.get("level", 0.5)
        if not isinstance(level, (int, float)) or isinstance(level, bool) or level <= 0:
            raise ValueError(f"constant.level must be a number > 0, got {level!r}")
        return {"level": float(level)}

    def tasks(self, settings, options, curve):
        tasks = super().tasks(settings, options, curve)
        for t in tasks:
            t["level"] = options["level"]
        return tasks

    def run(self, task):
        lv = task["level"]
        return [row for s in task["settings"]
                for row in Result(setting=s, evaluator=self.name, train=lv, test=2 * lv,
                                  score=0.0).rows()]


@pytest.fixture
def constant():
    ev = register_evaluator(Constant())
    yield ev
    unregister_evaluator("constant")


def config(evaluators, **sections):
    return {"sweep": {"evaluators": evaluators}, "grid": {"psi_n": 1, "psi_p": [0.5, 1, 2]},
            **sections}


def test_builtins_and_their_attributes():
    assert registered_evaluators()[:3] == ("theory", "simulate", "sample")
    th, sim = get_evaluator("theory"), get_evaluator("simulate")
    assert (th.finite_size, th.style, th.options) == (False, "line", ("metrics",))
    assert (sim.finite_size, sim.style, sim.options) == (True, "points",
                                                         ("d", "seeds", "seed", "metrics"))
    assert evaluator_names(finite_size=True) == ("simulate", "sample")
    with pytest.raises(ValueError, match="unknown evaluator 'nope'.*theory, simulate"):
        get_evaluator("nope")


def test_toy_evaluator_runs_through_a_sweep(constant, tmp_path):
    cfg = config(["constant", "theory"], constant={"level": 0.25})
    df = run_sweep(cfg, tmp_path / "o", workers=1, progress=False, log=lambda _: None)
    mine = df[df["evaluator"] == "constant"]
    assert len(mine) == 3 and len(df[df["evaluator"] == "theory"]) == 3
    assert (mine["train"] == 0.25).all() and (mine["test"] == 0.5).all()
    assert mine["d"].isna().all()
    # the option is part of the work: another level is another sweep
    assert load_config(cfg).hash != load_config(config(["constant", "theory"])).hash
    manifest = json.loads((tmp_path / "o" / "sweep.json").read_text())
    assert manifest["config"]["constant"]["level"] == 0.25
    # resuming finds every task done, keyed by the evaluator's name
    logs = []
    run_sweep(cfg, tmp_path / "o", workers=1, progress=False, log=logs.append)
    assert "resuming: 4 of 4 tasks already done" in logs  # 3 points + 1 theory curve


def test_unknown_evaluator_lists_the_registered_ones(constant):
    with pytest.raises(ConfigError, match=r"unknown evaluator 'sampler' "
                                          r"\(allowed: theory, simulate, sample, constant\)"):
        load_config(config(["sampler"]))
    with pytest.raises(ConfigError, match="'theory', 'simulate', 'sample' and/or 'constant'"):
        load_config({"sweep": {}, "grid": {"psi_n": 1, "psi_p": 1}})


def test_the_registry_drives_config_validation(constant):
    # the section's keys are the evaluator's options plus grid
    with pytest.raises(ConfigError, match=r"unknown key 'constant.lvl' \(allowed: level, grid\)"):
        load_config(config(["constant"], constant={"lvl": 1}))
    # its own checks, named by its key
    with pytest.raises(ConfigError, match="constant.level must be a number > 0"):
        load_config(config(["constant"], constant={"level": -1}))
    # a section for an evaluator that is not run
    with pytest.raises(ConfigError, match=r"\[constant\] is given but 'constant' is not in"):
        load_config(config(["theory"], constant={"level": 1}))
    # a grid override, like the built-ins'
    cfg = load_config(config(["constant"], constant={"grid": {"m": [1, 2]}}))
    assert len(cfg.tasks()) == 6 and cfg.n_rows == {"constant": 6}
    unregister_evaluator("constant")
    with pytest.raises(ConfigError, match="unknown key 'constant'"):
        load_config(config(["theory"], constant={"level": 1}))


def test_figures_draw_the_toy_by_its_style(constant, tmp_path):
    from rfdsm import plots

    df = run_sweep(config(["constant", "theory"]), tmp_path / "o", workers=1, progress=False,
                   log=lambda _: None)
    fig = plots.learning_curves(df)
    gids = {line.get_gid() for ax in fig.axes for line in ax.get_lines()}
    assert {"constant:test:m=1", "theory:test:m=1"} <= gids
    labels = [t.get_text() for leg in fig.legends for t in leg.get_texts()]
    assert r"constant ($d \to \infty$)" in labels


def test_registration_is_checked(constant):
    class Bad(Constant):
        name = "bad"

    for attr, value, msg in (("style", "dots", "style must be one of"),
                             ("name", "grid", "evaluator name"),
                             ("name", "a:b", "evaluator name"),
                             ("options", ("grid",), "options must be")):
        ev = Bad()
        setattr(ev, attr, value)
        with pytest.raises(ValueError, match=msg):
            register_evaluator(ev)
    with pytest.raises(ValueError, match="already registered"):
        register_evaluator(Constant())
    with pytest.raises(ValueError, match="built-in"):
        register_evaluator(get_evaluator("theory"), overwrite=True)
    with pytest.raises(ValueError, match="built-in"):
        unregister_evaluator("simulate")


def test_task_keys_and_hash_of_a_shipped_config_are_stable():
    # journal keys: a change would make every existing sweep directory unresumable
    cfg = load_config(SCRIPTS / "quickstart.toml")
    keys = [t["key"] for t in cfg.tasks()]
    assert cfg.hash.startswith("c7643e5c2dbfc11e")
    assert (len(keys), keys[0], keys[-1]) == (38, "theory:f93b9a5539c80bea",
                                              "simulate:c0cea61bcb834d8b")
