#!/usr/bin/env bash
# evaluate.sh: every trained method on every task: fairseq-plugins-ensemble over the members of all its seed
# groups ($EVAL_SUBSET split; the paper's protocol: every sub-ensemble of 2..min(5, MEMBERS) members, or the
# sizes in COMBINATIONS), then report.py: $RESULTS_DIR/results.json and table.md (single / ensemble / diff,
# diversity, the all-member ensemble and mask IoU, wall time of a member relative to a dense one) beside the
# paper's numbers.
. "$(dirname "$0")/common.sh"
mkdir -p "$RESULTS_DIR/ensembles"
for task in $TASKS; do for method in $METHODS; do
    groups=()
    for seed in $SEED_GROUPS; do
        out=$WORK_DIR/members/$task/$(seeded_run "$method" "$seed")
        [[ -d $out ]] || { say "skip $task $method seed $seed (not trained)"; continue; }
        groups+=(--path "$(ls -d "$out"/member-*/ | sed 's|/$|/checkpoint_last.pt|' | paste -sd:)")
    done
    (( ${#groups[@]} )) || continue
    say "ensemble $task $method"
    fairseq-plugins-ensemble "$(data_dir "$task")" "${groups[@]}" --valid-subset "$EVAL_SUBSET" \
        ${COMBINATIONS:+--combinations "$COMBINATIONS"} --json "$RESULTS_DIR/ensembles/$task-$method.json" > "$RESULTS_DIR/ensembles/$task-$method.txt"
done; done
python "$HERE/report.py" "$WORK_DIR/members" "$RESULTS_DIR" --small "$SMALL"
