#!/usr/bin/env bash
# prepare.sh [NAME [REMOVE.npy]]: training labels 10% flipped (seed 1) -> $WORK_DIR/data/NAME (default noisy);
# REMOVE.npy (training indices) leaves those instances out (data cleansing).
. "$(dirname "$0")/common.sh"
NAME=${1:-noisy}
say "data $NAME"
python "$HERE/noisy_labels.py" "${SOURCE[@]}" --noise 0.1 --seed 1 ${2:+--remove "$2"} --out "$WORK_DIR/data/$NAME"
