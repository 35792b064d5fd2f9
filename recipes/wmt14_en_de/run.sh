#!/usr/bin/env bash
# run.sh [EXPERIMENT]: prepare, train, evaluate in one go (default experiment b2t-6l).
#   SMALL=1 bash recipes/wmt14_en_de/run.sh            # what CI runs: every step on small local data
#   bash recipes/wmt14_en_de/run.sh b2t-18l            # the paper's setting (downloads, GPUs)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
EXPERIMENT=${1:-b2t-6l}
bash "$HERE/prepare.sh"
bash "$HERE/train.sh" "$EXPERIMENT"
bash "$HERE/evaluate.sh" "$EXPERIMENT"
