#!/usr/bin/env bash
# run.sh: prepare, train every method with every seed, evaluate.
#   bash recipes/parsing/run.sh                   # UD English EWT, 3 methods x 3 seeds (GPU)
#   SMALL=1 bash recipes/parsing/run.sh           # Turkish web treebank on CPU (3 x 3 runs of 8 epochs)
#   SMALL=1 SEEDS=1 EPOCHS=1 bash recipes/parsing/run.sh   # what the recipe test runs
. "$(dirname "$0")/common.sh"
bash "$HERE/prepare.sh"
train_every_run "$METHODS" "$SEEDS"
bash "$HERE/evaluate.sh"
