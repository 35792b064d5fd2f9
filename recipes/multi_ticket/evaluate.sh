#!/usr/bin/env bash
# evaluate.sh: every trained method and seed group on every task: fairseq-plugins-ensemble over the members
# ($EVAL_SUBSET split; sub-ensembles of sizes $COMBINATIONS), then report.py: $RESULTS_DIR/results.json and
# table.md (single / ensemble / diff, diversity, mask IoU, wall time of a member relative to a dense one)
# beside the paper's numbers.
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/common.sh"
mkdir -p "$RESULTS_DIR/ensembles"
for task in $TASKS; do for method in $METHODS; do for seed in $SEED_GROUPS; do
    out=$WORK_DIR/members/$task/$method-seed$seed
    [[ -d $out ]] || { say "skip $task $method seed $seed (not trained)"; continue; }
    paths=$(ls -d "$out"/member-*/ | sed 's|/$|/checkpoint_last.pt|' | paste -sd:)
    say "ensemble $task $method seed $seed"
    fairseq-plugins-ensemble "$(data_dir "$task")" --path "$paths" --valid-subset "$EVAL_SUBSET" \
        --combinations "$COMBINATIONS" --json > "$RESULTS_DIR/ensembles/$task-$method-seed$seed.json"
done; done; done
python "$HERE/report.py" "$WORK_DIR/members" "$RESULTS_DIR" --small "$SMALL"
