#!/usr/bin/env bash
# evaluate.sh: test accuracy of every method's checkpoints (mean +- std over seeds), DIP for each
# S in EVAL_SAMPLES, written to $WORK_DIR/results.{txt,json} and $WORK_DIR/accuracy_vs_s.png.
. "$(dirname "$0")/common.sh"
checkpoints() { local method=$1 seed list=(); for seed in $SEEDS; do
    list+=("$WORK_DIR/checkpoints/$(seeded_run "$method" "$seed")/checkpoint_last.pt"); done; echo "${list[@]}"; }
comma() { echo "$*" | tr ' ' ','; }
for method in $METHODS; do for path in $(checkpoints "$method"); do
    [[ -e $path ]] || die "$path missing: run train.sh ${method} SEED first"; done; done
BASELINES=()
for method in erm mixup0.2 mixup1.0; do BASELINES+=(--baseline "$method=$(comma $(checkpoints "$method"))"); done
fairseq-plugins-dip-evaluate "$DATA" --dip $(checkpoints dip) "${BASELINES[@]}" --valid-subset test \
    --dip-eval-samples "$EVAL_SAMPLES" --json "$WORK_DIR/results.json" --plot "$WORK_DIR/accuracy_vs_s.png" \
    | tee "$WORK_DIR/results.txt"
