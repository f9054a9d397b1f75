"""Shared by the CLI tests: run ``rfdsm.cli.main`` and capture what it printed."""

from rfdsm.cli import main


def run(argv, capsys):
    """``(exit code, stdout, stderr)`` of ``rfdsm ARGV`` (argparse's own exits included)."""
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err
