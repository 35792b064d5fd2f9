#!/usr/bin/env bash
# evaluate.sh rank: influence of every training instance of the noisy run on the valid split
#                   (fairseq-plugins-influence), rankings of flipped labels, instances to remove.
# evaluate.sh accuracy NAME.SEED...: test accuracy of trained runs -> $WORK_DIR/results/accuracy.tsv
. "$(dirname "$0")/common.sh"
RESULTS=$WORK_DIR/results
mkdir -p "$RESULTS"
case $1 in
rank)
    say "influence"
    fairseq-plugins-influence "$WORK_DIR/data/noisy" --user-dir "$(fairseq-plugins-dir)" \
        --path "$WORK_DIR/checkpoints/noisy.1/checkpoint_last.pt" --train-subset train --valid-subset valid \
        --out "$RESULTS/influence" --no-progress-bar > "$RESULTS/influence.txt"
    say "rankings"
    python "$HERE/rank.py" --data "$WORK_DIR/data/noisy" --influence "$RESULTS/influence" \
        --checkpoint-dir "$WORK_DIR/checkpoints/noisy.1" --out "$RESULTS"
    ;;
accuracy)
    shift
    for run in "$@"; do
        say "test accuracy $run"
        fairseq-validate "$WORK_DIR/data/${run%.*}" --user-dir "$(fairseq-plugins-dir)" --task image_classification \
            --path "$WORK_DIR/checkpoints/$run/checkpoint_last.pt" --valid-subset test --batch-size 1000 \
            --num-workers 0 > "$RESULTS/validate-$run.log" 2>&1 \
            || { tail -5 "$RESULTS/validate-$run.log" >&2; die "fairseq-validate failed on $run"; }
        accuracy=$(last_validation "$RESULTS/validate-$run.log" test accuracy)
        printf '%s\t%s\n' "$run" "$accuracy" >> "$RESULTS/accuracy.tsv"
    done
    ;;
*) echo "evaluate.sh: error: the first argument must be rank or accuracy, got '$1'" >&2; exit 2 ;;
esac
