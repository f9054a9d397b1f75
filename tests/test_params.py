"""Every row of the parameter table walks through Setting, TOML, the CLI, the stored table and
the plot labels: a parameter added to rfdsm/params.py reaches every boundary or fails here."""

import dataclasses

import pytest

from rfdsm import Setting
from rfdsm.core import params
from rfdsm.cli import build_parser, setting_from_args
from rfdsm.sweep.config import load_config
from rfdsm.sweep.store import COLUMNS, to_frame

#: A valid value other than the default for every parameter (or the default where only one
#: value is registered): a new row of the table must add one here.
EXAMPLES = {"psi_n": 1.5, "psi_p": 2.5, "m": 3, "t": 0.3, "lam": 0.02, "tau": 10.0, "activation": "relu",
            "estimator": "ridge", "data": "spectrum(0.5:2,0.5:0)", "psi_d": 0.5,
            "step": 0.5, "momentum": 0.3}


def _stored(value):
    return value if isinstance(value, (int, float)) else str(value)


def test_the_table_and_the_setting_fields_agree():
    assert tuple(f.name for f in dataclasses.fields(Setting)) == params.names()
    missing = set(params.names()) - set(EXAMPLES)
    assert not missing, f"add an example value for {sorted(missing)} to EXAMPLES"


@pytest.mark.parametrize("row", params.PARAMS, ids=lambda r: r.name)
def test_parameter_walks_every_boundary(row):
    from rfdsm.plots.style import AXIS_LABEL

    base = {"psi_n": 1.0, "psi_p": 2.0}
    value = EXAMPLES[row.name]
    # Setting: validated and normalised by its row
    s = Setting(**{**base, row.name: value})
    assert getattr(s, row.name) == value
    # a bad value is refused with the parameter's name in the message
    with pytest.raises(ValueError, match=row.name):
        Setting(**{**base, row.name: "not-a-value" if row.kind != "object" else 12345})
    # TOML grid key of the same name
    # (the simulator: it evaluates every parameter and data model)
    cfg = load_config({"sweep": {"evaluators": ["simulate"]}, "simulate": {"d": 16},
                       "grid": {**base, row.name: value}})
    assert [getattr(x, row.name) for x in cfg.settings["simulate"]] == [value]
    # CLI flag, with its help
    parser = build_parser()
    args = parser.parse_args(["theory", "--psi-n", "1", "--psi-p", "2", row.flag, str(value)])
    assert getattr(setting_from_args(args), row.name) == value
    assert row.flag in parser.format_help() or row.flag in _subcommand_help(parser, "theory")
    # stored table: a column of that name, holding the value
    assert row.name in COLUMNS
    table = to_frame([{"evaluator": "theory", **s.to_dict(), "train": 0.5, "test": 1.0,
                       "score": 1.0, "converged": True}])
    assert table[row.name].tolist() == [_stored(value)]
    # plot label
    assert AXIS_LABEL[row.name]


def _subcommand_help(parser, name):
    for action in parser._subparsers._group_actions:
        if name in action.choices:
            return action.choices[name].format_help()
    return ""


def test_defaults_are_those_of_the_setting():
    s = Setting(psi_n=1, psi_p=1)
    for row in params.PARAMS:
        if not row.required:
            assert getattr(s, row.name) == row.default
