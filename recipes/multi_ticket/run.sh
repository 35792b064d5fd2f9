#!/usr/bin/env bash
# run.sh: the whole study: prepare, every method with every seed group on every task, evaluate, print the table.
#   bash recipes/multi_ticket/run.sh             # RoBERTa-base, MRPC and STS-B, 2 x 10 members per method
#   SMALL=1 bash recipes/multi_ticket/run.sh     # CPU: tiny RoBERTa, Debian package sections, 2 x 3 members
. "$(dirname "$0")/common.sh"
bash "$HERE/prepare.sh"
for task in $TASKS; do for seed in $SEED_GROUPS; do for method in $METHODS; do
    bash "$HERE/train.sh" "$method" "$seed" "$task" > /dev/null
done; done; done
bash "$HERE/evaluate.sh"
cat "$RESULTS_DIR/table.md"
