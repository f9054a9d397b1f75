import json
import math
import subprocess
import sys

import pytest

from rfdsm.cli import main


def run(argv, capsys):
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse errors exit through SystemExit(2)
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def test_simulate_json(capsys):
    code, out, _ = run(["simulate", "--psi-n", "2", "--psi-p", "4", "--m", "inf", "--t", "0.1",
                        "--lam", "0.01", "--activation", "tanh", "--d", "20", "--seeds", "3", "--json"], capsys)
    assert code == 0
    obj = json.loads(out)
    for k in ("train", "test", "score", "train_se", "test_se", "score_se"):
        assert isinstance(obj[k], float) and math.isfinite(obj[k])
    assert obj["m"] == "inf" and obj["d"] == 20 and obj["n"] == 40 and obj["p"] == 80
    assert [r["seed"] for r in obj["per_seed"]] == [0, 1, 2]
    mean = sum(r["test"] for r in obj["per_seed"]) / 3
    assert obj["test"] == pytest.approx(mean, rel=1e-12)


def test_simulate_text(capsys):
    code, out, _ = run(["simulate", "--psi-n", "1", "--psi-p", "2", "--m", "3", "--d", "10"], capsys)
    assert code == 0 and "train" in out and "bayes" in out


@pytest.mark.parametrize("args, word", [
    (["--psi-n", "-1", "--psi-p", "2", "--d", "10"], "psi_n"),
    (["--psi-n", "0", "--psi-p", "2", "--d", "10"], "psi_n"),
    (["--psi-n", "nan", "--psi-p", "2", "--d", "10"], "psi_n"),
    (["--psi-n", "1", "--psi-p", "0", "--d", "10"], "psi_p"),
    (["--psi-n", "1", "--psi-p", "2", "--m", "0", "--d", "10"], "m must"),
    (["--psi-n", "1", "--psi-p", "2", "--m", "2.5", "--d", "10"], "m must"),
    (["--psi-n", "1", "--psi-p", "2", "--m", "lots", "--d", "10"], "m must"),
    (["--psi-n", "1", "--psi-p", "2", "--t", "0", "--d", "10"], "t must"),
    (["--psi-n", "1", "--psi-p", "2", "--t", "-1", "--d", "10"], "t must"),
    (["--psi-n", "1", "--psi-p", "2", "--lam", "-0.1", "--d", "10"], "lam must"),
    (["--psi-n", "1", "--psi-p", "2", "--lam", "nan", "--d", "10"], "lam must"),
    (["--psi-n", "1", "--psi-p", "2", "--activation", "sin", "--d", "10"], "activation must"),
    (["--psi-n", "1", "--psi-p", "2", "--d", "0"], "--d"),
    (["--psi-n", "1", "--psi-p", "2", "--d", "ten"], "--d"),
    (["--psi-n", "1", "--psi-p", "2", "--d", "10", "--seeds", "0"], "--seeds"),
    (["--psi-n", "0.01", "--psi-p", "2", "--d", "10"], "round"),
    (["--psi-p", "2", "--d", "10"], "--psi-n"),
    (["--psi-n", "1e12", "--psi-p", "2", "--d", "10"], "GiB"),
    (["--psi-n", "2", "--psi-p", "4", "--m", "1000000000", "--d", "10"], "GiB"),
    (["--psi-n", "2", "--psi-p", "4", "--m", "1e30", "--d", "10"], "m must"),  # > 2**53: inexact
    (["--psi-n", "1", "--psi-p", "2", "--m", "1e400", "--d", "10"], "m must"),  # not a way to say inf
    (["--psi-n", "1", "--psi-p", "2", "--m", "9007199254740993", "--d", "10"], "m must"),
])
def test_bad_arguments_one_line_exit_2(args, word, capsys):
    code, out, err = run(["simulate", *args], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rfdsm: error:") and word in lines[0], err
    assert "Traceback" not in err


def test_console_script_exit_code():
    proc = subprocess.run([sys.executable, "-m", "rfdsm.cli", "simulate", "--psi-n", "1", "--psi-p", "1",
                           "--m", "0", "--d", "5"], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "m must be" in proc.stderr


def test_module_entry_point_reports_subcommand_usage_errors_with_exit_2(tmp_path):
    # python -m rfdsm.cli runs cli.py as __main__; errors raised by subcommand modules (they
    # import rfdsm.cli.UsageError) must still be usage errors, not "unexpected" (exit 1)
    (tmp_path / "empty.csv").write_text("")
    proc = subprocess.run([sys.executable, "-m", "rfdsm.cli", "plot", str(tmp_path / "empty.csv")],
                          capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "UsageError" not in proc.stderr


def test_help_documents_exit_status(capsys):
    for cmd in ("simulate", "theory"):
        code, out, _ = run([cmd, "--help"], capsys)
        assert code == 0 and "exit status" in out and "not converged" in out


def test_metrics_flag_adds_the_diagnostics_to_json_and_text(capsys):
    base = ["--psi-n", "2", "--psi-p", "4", "--m", "4", "--t", "0.1", "--lam", "0.01"]
    code, out, _ = run(["theory", *base, "--metrics", "diagnostics", "--json"], capsys)
    rec = json.loads(out)
    assert code == 0
    assert rec["bias2"] + rec["variance"] == pytest.approx(rec["score"], rel=1e-12)
    assert 0 < rec["test_emp"] < rec["test"]
    code, out, _ = run(["simulate", *base, "--d", "40", "--metrics", "test_emp"], capsys)
    assert code == 0 and "test_emp" in out and "bias2" not in out
    code, out, _ = run(["theory", *base], capsys)
    assert "test_emp" not in out  # on request only: the plain output is unchanged


def test_metrics_flag_refuses_an_unknown_name(capsys):
    code, _, err = run(["theory", "--psi-n", "2", "--psi-p", "4", "--metrics", "tset_emp"],
                       capsys)
    assert code == 2 and "tset_emp" in err and "registered" in err and len(err.splitlines()) == 1


def test_metrics_without_a_limit_are_named_not_dropped(capsys):
    code, out, _ = run(["theory", "--psi-n", "2", "--psi-p", "4", "--m", "4", "--tau", "10",
                        "--metrics", "bias2,test_emp", "--json"], capsys)
    rec = json.loads(out)
    assert code == 0 and "test_emp" not in rec and rec["bias2"] > 0
    assert "tau = inf only" in rec["diagnostics"]["metrics_without_limit"]["test_emp"]


def test_tiny_tau_is_the_untrained_fit_without_nan_or_warnings(capsys):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow in the flow would be an error here
        code, out, err = run(["theory", "--psi-n", "2", "--psi-p", "4", "--m", "inf",
                              "--tau", "1e-310", "--metrics", "beta,bias2", "--json"], capsys)
    rec = json.loads(out)
    assert code == 0 and err == "" and rec["converged"]
    assert rec["train"] == rec["test"] == 1.0 and rec["bias2"] == 1.0
    # beta is tau times its initial slope, which a resolved short time gives
    code, out, _ = run(["theory", "--psi-n", "2", "--psi-p", "4", "--m", "inf", "--tau", "1e-200",
                        "--metrics", "beta", "--json"], capsys)
    assert rec["beta"] == pytest.approx(json.loads(out)["beta"] * 1e-110, rel=1e-9)


def test_repeated_metrics_flags_add_up(capsys):
    code, out, _ = run(["theory", "--psi-n", "2", "--psi-p", "4", "--metrics", "beta",
                        "--metrics", "bias2,beta", "--metrics", "variance", "--json"], capsys)
    rec = json.loads(out)
    assert code == 0 and all(isinstance(rec[k], float) for k in ("beta", "bias2", "variance"))
    code, _, err = run(["theory", "--psi-n", "2", "--psi-p", "4", "--metrics", "beta",
                        "--metrics", "nope"], capsys)
    assert code == 2 and "nope" in err and len(err.splitlines()) == 1


def test_toml_metrics_accept_diagnostics_as_the_cli_does():
    from rfdsm.analysis.bias_variance import DIAGNOSTICS
    from rfdsm.sweep.config import ConfigError, load_config

    base = {"sweep": {"name": "x", "evaluators": ["theory", "simulate"]},
            "grid": {"psi_n": [1, 2], "psi_p": 4}, "simulate": {"d": 10}}
    cfg = load_config({**base, "theory": {"metrics": ["diagnostics"]},
                       "simulate": {"d": 10, "metrics": ["beta", "diagnostics"]}})
    assert list(cfg.options["theory"]["metrics"]) == list(DIAGNOSTICS)
    assert list(cfg.options["simulate"]["metrics"]) == ["beta", "test_emp", "bias2", "variance"]
    with pytest.raises(ConfigError, match="theory.metrics: unknown metric 'diagnostic'.*or "
                                          "diagnostics"):
        load_config({**base, "theory": {"metrics": ["diagnostic"]}})


def test_a_huge_data_eigenvalue_is_named_as_the_cause(capsys):
    code, out, _ = run(["theory", "--psi-n", "2", "--psi-p", "4", "--m", "inf",
                        "--data", "spectrum(0.5:1e300,0.5:1)"], capsys)
    assert code == 1 and "the data eigenvalue 1e+300 is too large at t = 0.1" in out
    assert "t = 0.1 is too small" not in out
    code, out, _ = run(["theory", "--psi-n", "2", "--psi-p", "4", "--m", "inf", "--t", "1e-20",
                        "--data", "spectrum(0.5:2,0.5:1)"], capsys)
    assert code == 1 and "t = 1e-20 is too small" in out
