#!/usr/bin/env bash
# train.sh METHOD SEED [FAIRSEQ_ARGS...]: one parser; METHOD is weight, instance-dot or instance-cosine.
# The same BiLSTM (dependency_parser_bilstm), projections and edge vectors for every method; only
# the arc/label heads differ. Adam (0.9, 0.9) lr 2e-3, clip 5, 32 sentences per batch, EPOCHS epochs,
# the instance heads with K sampled training sentences per batch and the label rule INSTANCE_LABELS
# (mean or mass); the best checkpoint by valid LAS.
. "$(dirname "$0")/common.sh"
[[ $# -ge 2 ]] || die "usage: train.sh METHOD SEED [FAIRSEQ_ARGS...] (METHOD: $METHODS)"
METHOD=$1 SEED=$2; shift 2
case $METHOD in
    weight) HEADS=(--arc-head weight --label-head weight) ;;
    instance-dot) HEADS=(--arc-head instance --label-head instance --similarity dot --instance-labels "$INSTANCE_LABELS") ;;
    instance-cosine) HEADS=(--arc-head instance --label-head instance --similarity cosine --instance-labels "$INSTANCE_LABELS") ;;
    *) die "METHOD $METHOD: choose one of $METHODS" ;;
esac
[[ -e $(done_marker data) ]] || die "no data in $DATA; run prepare.sh first"
SAVE_DIR=$WORK_DIR/checkpoints/$(seeded_run "$METHOD" "$SEED")
mkdir -p "$SAVE_DIR"
say "train $METHOD seed $SEED: $EPOCHS epochs"
fairseq-train "$DATA" --user-dir "$(fairseq-plugins-dir)" --task dependency_parsing --criterion dependency_parsing \
    --arch dependency_parser_bilstm "${MODEL_SIZE[@]}" "${HEADS[@]}" --instance-sentences "$K" \
    --optimizer adam --adam-betas "(0.9, 0.9)" --lr 2e-3 --clip-norm 5 --batch-size 32 --max-epoch "$EPOCHS" \
    --best-checkpoint-metric las --maximize-best-checkpoint-metric --seed "$SEED" \
    --save-dir "$SAVE_DIR" --no-epoch-checkpoints --log-format simple --log-interval 50 --no-progress-bar \
    "${DEVICE[@]}" "$@" 2>&1 | tee -a "$SAVE_DIR/train.log"
trained "$SAVE_DIR/train.log"
