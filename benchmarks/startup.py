"""Wall time of ``rfdsm theory`` beside ``python -c "import numpy, scipy.special"``.

    python benchmarks/startup.py [--repeats 5] [--before SRC] [--out FILE]

Each command runs as a fresh process, the commands interleaved (one of each per repeat, so a
neighbour's load hits them alike); reports the median wall time and its ratio to the
numpy + scipy.special import.  ``--before SRC`` adds the same theory command run from another
checkout of rfdsm (``PYTHONPATH=SRC python -m rfdsm.cli ...``), e.g. the code before a change.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time

THEORY = ["theory", "--psi-n", "2", "--psi-p", "4", "--m", "inf"]


def commands(before):
    py = sys.executable
    exe = shutil.which("rfdsm", path=os.path.dirname(py)) or shutil.which("rfdsm")
    cli = [exe] if exe else [py, "-m", "rfdsm.cli"]
    cmds = {
        'python -c "import numpy, scipy.special"': ([py, "-c", "import numpy, scipy.special"], None),
        'python -c "import rfdsm"': ([py, "-c", "import rfdsm"], None),
        "rfdsm " + " ".join(THEORY): (cli + THEORY, None),
        "rfdsm simulate ... --d 50": (cli + ["simulate", "--psi-n", "2", "--psi-p", "4", "--d", "50"], None),
    }
    if before:
        env = dict(os.environ, PYTHONPATH=os.path.abspath(before))
        cmds["before: rfdsm " + " ".join(THEORY)] = ([py, "-m", "rfdsm.cli"] + THEORY, env)
    return cmds


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--before", default=None)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    cmds = commands(args.before)
    times = {k: [] for k in cmds}
    cwd = os.path.expanduser("~") if args.before else None  # not inside a checkout
    for _ in range(args.repeats):
        for name, (cmd, env) in cmds.items():
            t0 = time.perf_counter()
            subprocess.run(cmd, env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
            times[name].append(time.perf_counter() - t0)
    base = statistics.median(times['python -c "import numpy, scipy.special"'])
    lines = [f"median of {args.repeats}, interleaved; load average {os.getloadavg()[0]:.2f}; "
             f"{os.cpu_count()} CPUs", "", "| command | wall s (median) | / numpy + scipy.special |",
             "|---|---|---|"]
    for name, v in times.items():
        med = statistics.median(v)
        lines.append(f"| `{name}` | {med:.3f} | {med / base:.2f} |")
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
