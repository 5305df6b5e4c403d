#!/usr/bin/env bash
# Unattended race on a 16-core machine where nothing can be installed: pytest, pytest-xdist,
# psutil and cloudpickle are there, pytest-parproc is not, so it runs from this checkout
# (--in-place). Run from the repository root:
#
#     bash benchmarks/device_race.sh [more race.py options, e.g. --suites cpu,sleep --repeat 2]
#
# Options given here come after the defaults and win over them. Progress goes to stderr; the
# table is printed at the end. Where $OUT is set (the device machine's output folder), the raw
# times go to $OUT/race.json, rewritten after each suite, and the table to $OUT/race_table.md,
# so a run cut short still leaves the suites it finished.
set -euo pipefail

cd "$(dirname "$0")/.."
python="${PYTHON:-python}"

"$python" --version
"$python" -c 'import os; print("cpus:", os.cpu_count())'

extra=()
if [[ -n "${OUT:-}" ]]; then
    mkdir -p "$OUT"
    extra=(--json "$OUT/race.json")
fi

table="$(mktemp)"
trap 'rm -f "$table"' EXIT
status=0
"$python" benchmarks/race.py --in-place --jobs 16 --scale 4 --repeat 3 ${extra[@]+"${extra[@]}"} "$@" \
    >"$table" || status=$?
if [[ -n "${OUT:-}" ]]; then
    cp "$table" "$OUT/race_table.md"
fi
echo
cat "$table"
exit "$status"
