#!/usr/bin/env bash
# evaluate.sh: every run of $WORK_DIR/logs: the test perplexity of its best checkpoint
# (fairseq-eval-lm, 64 tokens of context), its best validation perplexity, spike count and largest
# gradient norm from the training log; writes $WORK_DIR/results.tsv and $WORK_DIR/curves.png
# (training loss and gradient norm per update).
set -euo pipefail
. "$(dirname "$0")/common.sh"
RESULTS=$WORK_DIR/results.tsv
test_perplexity() {  # test_perplexity CHECKPOINT
    fairseq-eval-lm "$DATA" --user-dir "$(fairseq-plugins-dir)" --path "$1" --gen-subset test \
        --tokens-per-sample $TOKENS_PER_SAMPLE --context-window 64 --max-tokens 8192 2>&1 \
        | sed -n 's/.*Perplexity: \([0-9.]*\).*/\1/p' | tail -n 1
}
shopt -s nullglob
logs=("$WORK_DIR"/logs/*.log)
(( ${#logs[@]} )) || die "no training logs in $WORK_DIR/logs; run train.sh first"
printf "run\tvalid_ppl\ttest_ppl\tspikes\tupdates\tmax_gnorm\tstatus\n" > "$RESULTS"
summaries=$(fairseq-plugins-training-curves "${logs[@]}" --json --plot "$WORK_DIR/curves.png")
for log in "${logs[@]}"; do
    name=$(basename "$log" .log)
    checkpoint=$WORK_DIR/checkpoints/$name/checkpoint_best.pt
    status=ok test=-
    [[ -e "$WORK_DIR/logs/$name.diverged" ]] && status=diverged
    [[ -e "$checkpoint" ]] && test=$(test_perplexity "$checkpoint")
    stats=$(python -c "import json, sys; s = json.loads(sys.argv[1])[sys.argv[2]]
valid = '-' if s['best_valid_ppl'] is None else round(s['best_valid_ppl'], 2)
print(valid, '$test', s['spikes'], s['updates'], round(s['max_gnorm'], 3), sep='\t')" "$summaries" "$name")
    printf "%s\t%s\t%s\n" "$name" "$stats" "$status" >> "$RESULTS"
done
cat "$RESULTS"
say "results in $RESULTS, curves in $WORK_DIR/curves.png"
