#!/usr/bin/env bash
# train.sh DATA_NAME SEED: turn-over dropout MLP on $WORK_DIR/data/DATA_NAME -> $WORK_DIR/checkpoints/DATA_NAME.SEED
. "$(dirname "$0")/common.sh"
NAME=$1; SEED=$2
say "train $NAME seed $SEED"
mkdir -p "$WORK_DIR/logs"
fairseq-train "$WORK_DIR/data/$NAME" --user-dir "$(fairseq-plugins-dir)" "${MODEL[@]}" \
    --optimizer adam --lr 3e-3 --batch-size 64 --max-epoch $EPOCHS --seed "$SEED" \
    --save-interval $SAVE_EVERY --validate-interval $SAVE_EVERY --save-dir "$WORK_DIR/checkpoints/$NAME.$SEED" \
    --num-workers 0 --no-progress-bar --log-format simple --log-interval 1000 > "$WORK_DIR/logs/train.$NAME.$SEED.log"
