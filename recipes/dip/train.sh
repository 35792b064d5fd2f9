#!/usr/bin/env bash
# train.sh METHOD SEED: one fairseq-train run; METHOD is erm, mixup0.2, mixup1.0 or dip.
# Every method trains the same backbone with the same budget: image_mlp (2 hidden layers of 256;
# REGIME=overfit: 3 of 1024), Adam lr 1e-3, batch 128, EPOCHS epochs (8; SMALL=1: 2; overfit: 100),
# the last checkpoint is evaluated.
# DIP: lam = max(u, 1-u), u ~ Beta(1, 1); 2 mixes per example in training, 8 in the per-epoch
# validation, a pool of 1000 training images. Extra arguments go to fairseq-train.
. "$(dirname "$0")/common.sh"
[[ $# -ge 2 ]] || die "usage: train.sh METHOD SEED (METHOD: $METHODS)"
METHOD=$1 SEED=$2; shift 2
case $METHOD in
    erm) CRITERION=(--criterion classification_cross_entropy) ;;
    mixup0.2|mixup1.0) CRITERION=(--criterion mixup_cross_entropy --mixup-alpha "${METHOD#mixup}") ;;
    dip) CRITERION=(--criterion dip_cross_entropy --dip-alpha 1.0 --dip-train-samples 2 --dip-eval-samples 8
                    --dip-pool-size 1000) ;;
    *) die "METHOD $METHOD: choose one of $METHODS" ;;
esac
SAVE_DIR=$WORK_DIR/checkpoints/$(seeded_run "$METHOD" "$SEED")
mkdir -p "$SAVE_DIR"
fairseq-train "$DATA" --user-dir "$(fairseq-plugins-dir)" --task image_classification "${DATA_FLAGS[@]}" \
    --arch image_mlp "${HIDDEN[@]}" "${CRITERION[@]}" "${VALIDATE[@]}" \
    --optimizer adam --lr 1e-3 --batch-size 128 --batch-size-valid 250 --max-epoch "$EPOCHS" --seed "$SEED" \
    --num-workers 0 --save-dir "$SAVE_DIR" --no-epoch-checkpoints --no-save-optimizer-state \
    --log-format simple --log-interval 100 --no-progress-bar "$@" 2>&1 | tee "$SAVE_DIR/train.log"
trained "$SAVE_DIR/train.log"
