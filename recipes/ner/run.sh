#!/usr/bin/env bash
# run.sh: prepare, train both heads with every seed (one run at a time), evaluate.
#   SMALL=1 bash recipes/ner/run.sh                   # WNUT-16 on CPU (README table)
#   CONLL2003_DIR=/data/conll2003 bash recipes/ner/run.sh   # the paper's CoNLL-2003 setting, on a GPU
. "$(dirname "$0")/common.sh"
bash "$HERE/prepare.sh"
train_every_run "$HEADS" "$SEEDS"
bash "$HERE/evaluate.sh"
