#!/usr/bin/env bash
# Regenerate the reference tables in data/ from the sweep configs in scripts/.
#
#   scripts/make_data.sh [WORKERS]        (default: all CPUs)
#
# Each sweep runs into build/sweeps/NAME (resumable: rerun after an interruption and it picks
# up where it stopped) and its table is copied to data/NAME.parquet, readable with
# rfdsm.load_results("data/NAME.parquet").  Wall times are printed per sweep.
set -euo pipefail
cd "$(dirname "$0")/.."
workers=${1:-$(python -c "import os; print(len(os.sched_getaffinity(0)))")}
mkdir -p data build/sweeps
for name in quickstart learning_curves learning_curves_finite_m m_dependence phase_diagram; do
    start=$(date +%s%N)
    rfdsm sweep "scripts/$name.toml" --out "build/sweeps/$name" --workers "$workers"
    end=$(date +%s%N)
    cp "build/sweeps/$name/results.parquet" "data/$name.parquet"
    ms=$(( (end - start) / 1000000 ))
    printf '%s: %d.%03d s wall with %s worker(s)\n' "$name" $((ms / 1000)) $((ms % 1000)) "$workers"
done
du -ch data/*.parquet | tail -1
