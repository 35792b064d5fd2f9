#!/usr/bin/env bash
# run.sh: the whole study: prepare, train every method with every seed, evaluate.
#   bash recipes/dip/run.sh                  # Fashion-MNIST, 4 methods x 3 seeds (README table)
#   SMALL=1 bash recipes/dip/run.sh          # what CI runs: sklearn digits, 1 seed, 2 epochs
. "$(dirname "$0")/common.sh"
bash "$HERE/prepare.sh"
train_every_run "$METHODS" "$SEEDS"
bash "$HERE/evaluate.sh"
