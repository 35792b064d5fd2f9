#!/usr/bin/env bash
# run.sh [EXPERIMENT]: prepare, train, evaluate in one go (default experiment alone-binary).
#   SMALL=1 bash recipes/duc2004/run.sh                          # what CI runs, on small local data
#   DUC2004_DIR=/path/to/duc2004 bash recipes/duc2004/run.sh     # the paper's setting (GPUs)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
EXPERIMENT=${1:-alone-binary}
bash "$HERE/prepare.sh"
bash "$HERE/train.sh" "$EXPERIMENT"
bash "$HERE/evaluate.sh" "$EXPERIMENT"
