#!/usr/bin/env bash
# evaluate.sh: test precision/recall/F1 of every head and seed (fairseq-validate), the per-type
# table of each head's first seed (fairseq-plugins-ner-report), the explanations and their
# plausibility for the instance head (fairseq-plugins-explain); summary in $WORK_DIR/results.json.
. "$(dirname "$0")/common.sh"
OUT=$WORK_DIR/results
mkdir -p "$OUT"
FIRST_SEED=${SEEDS%% *}
for head in $HEADS; do for seed in $SEEDS; do
    run=$(seeded_run "$head" "$seed")
    checkpoint=$WORK_DIR/checkpoints/$run/$CHECKPOINT
    [[ -e $checkpoint ]] || die "$checkpoint missing: run train.sh $head $seed first"
    fairseq-validate "$DATA" --user-dir "$(fairseq-plugins-dir)" --task span_ner --path "$checkpoint" \
        --valid-subset test --batch-size 32 --num-workers 0 > "$OUT/validate-$run.log" 2>&1 \
        || { tail -5 "$OUT/validate-$run.log" >&2; die "fairseq-validate failed on $checkpoint"; }
    echo "$head seed $seed: $(last_validation "$OUT/validate-$run.log" test)"
    if [[ $seed == "$FIRST_SEED" ]]; then
        fairseq-plugins-ner-report "$DATA" --path "$checkpoint" --valid-subset test --json "$OUT/report-$head.json" \
            2> "$OUT/report-$head.log"
    fi
    if [[ $head == instance ]]; then
        fairseq-plugins-explain "$DATA" --path "$checkpoint" --valid-subset test --top-k 5 --print 3 \
            --json "$OUT/explain-seed$seed.json" 2> "$OUT/explain-seed$seed.log" | tail -1
    fi
done; done
python "$HERE/summarize.py" "$OUT" --heads $HEADS --seeds $SEEDS --epochs "$EPOCHS" --small "$SMALL" \
    --vectors "${GLOVE:-}" --checkpoint "$CHECKPOINT" --json "$WORK_DIR/results.json"
