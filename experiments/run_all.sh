#!/usr/bin/env bash
# All three experiments of docs/results.md, one after the other, with their default (CPU-budget) settings: many hours
# on a 2-core CPU (the GlaS study alone is 45 runs of 3-8 min; RIGA's 5-fold study about 6.5 h).
#   bash experiments/run_all.sh ../shared/data results
# Each one resumes where it stopped when this is run again.
set -euo pipefail
data=${1:?usage: run_all.sh DATA_FOLDER OUT_FOLDER}
out=${2:?usage: run_all.sh DATA_FOLDER OUT_FOLDER}
here=$(cd "$(dirname "$0")" && pwd)
python=${PYTHON:-python}
"$python" "$here/glas.py" --data "$data/glas" --out "$out/glas"
"$python" "$here/riga.py" --data "$data/riga" --out "$out/riga"
"$python" "$here/brats.py" --data "$data/brats" --out "$out/brats"
