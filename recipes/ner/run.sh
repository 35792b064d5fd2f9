#!/usr/bin/env bash
# run.sh: prepare, train both heads with every seed (one run at a time), evaluate.
#   SMALL=1 bash recipes/ner/run.sh                   # WNUT-16 on CPU (README table)
#   CONLL2003_DIR=/data/conll2003 bash recipes/ner/run.sh   # the paper's CoNLL-2003 setting, on a GPU
. "$(dirname "$0")/common.sh"
bash "$HERE/prepare.sh"
for seed in $SEEDS; do for head in $HEADS; do
    bash "$HERE/train.sh" "$head" "$seed" > /dev/null
    say "trained $head seed $seed: $(grep -c 'train_inner' "$WORK_DIR/checkpoints/$(seeded_run "$head" "$seed")/train.log") log lines"
done; done
bash "$HERE/evaluate.sh"
