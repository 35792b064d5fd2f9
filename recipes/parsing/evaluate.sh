#!/usr/bin/env bash
# evaluate.sh: every trained METHOD-seedS on the test split: UAS/LAS with and without punctuation
# and well-formedness (fairseq-validate; SMALL=1 also without the ig rows), the explanations of the
# instance-based models (fairseq-plugins-explain: plausibility and label prior), then the mean and
# std over seeds in $WORK_DIR/results.json.
. "$(dirname "$0")/common.sh"
mkdir -p "$WORK_DIR/eval" "$WORK_DIR/explanations"
validate() {  # validate KIND [ARGS...]: test metrics of $CKPT into eval/$run.KIND.json
    local kind=$1; shift
    fairseq-validate "$DATA" --user-dir "$(fairseq-plugins-dir)" --task dependency_parsing --path "$CKPT" \
        --valid-subset test --batch-size 64 "${DEVICE[@]}" "$@" > "$WORK_DIR/eval/$run.$kind.log" 2>&1 \
        || { tail -5 "$WORK_DIR/eval/$run.$kind.log" >&2; die "fairseq-validate failed on $CKPT"; }
    $TREEBANK metrics "$WORK_DIR/eval/$run.$kind.log" "$WORK_DIR/eval/$run.$kind.json"
}
for method in $METHODS; do for seed in $SEEDS; do
    run=$(seeded_run "$method" "$seed")
    CKPT=$WORK_DIR/checkpoints/$run/checkpoint_best.pt
    [[ -e $CKPT ]] || die "$CKPT missing: run train.sh $method $seed first"
    say "evaluate $run"
    validate all
    [[ -z $EXCLUDE_LABELS ]] || validate no_ig --eval-exclude-labels "$EXCLUDE_LABELS"
    if [[ $method == instance-* ]]; then
        fairseq-plugins-explain "$DATA" --path "$CKPT" --valid-subset test --top-k 5 --print 0 \
            --json "$WORK_DIR/explanations/$run.json" > "$WORK_DIR/eval/$run.explain.log" 2>&1 \
            || { tail -5 "$WORK_DIR/eval/$run.explain.log" >&2; die "fairseq-plugins-explain failed on $CKPT"; }
        python -c "import json, sys; json.dump(json.load(open(sys.argv[1]))['summary'], open(sys.argv[2], 'w'))" \
            "$WORK_DIR/explanations/$run.json" "$WORK_DIR/eval/$run.explain.json"
    fi
done; done
$TREEBANK report "$WORK_DIR" "$WORK_DIR/results.json"
