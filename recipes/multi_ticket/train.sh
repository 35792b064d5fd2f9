#!/usr/bin/env bash
# train.sh METHOD SEED [TASK]: the $MEMBERS members of one method (dense, bagging, base, active, random)
# with seeds SEED, SEED+1, ... on TASK (default: the first of $TASKS), by fairseq-plugins-tickets, into
# $WORK_DIR/members/TASK/METHOD-seedSEED/member-<i>. Finetuning as the paper: EPOCHS epochs (3; SMALL=1: 4),
# Adam, LR (2e-5; SMALL=1: 2e-3) with 6% warmup then linear decay to 0 in every run, batch BATCH (32; SMALL=1:
# 16), dropout 0.1, weight decay 0.01; tickets: 3 rounds of 10% to a pruning ratio of 0.3; ACTIVE/RANDOM-LT
# regulariser weight TAU. Re-running skips finished members and rounds.
. "$(dirname "$0")/common.sh"
[[ $# -ge 2 ]] || die "usage: train.sh METHOD SEED [TASK] (METHOD: $METHODS)"
METHOD=$1 SEED=$2 TASK=${3:-${TASKS%% *}}
[[ -e $WORK_DIR/.done/binarize && -e $PRETRAINED ]] || die "no data or pretrained model in $WORK_DIR; run prepare.sh first"
mapfile -t OPTIONS < <(finetune_options "$TASK")
OUT=$WORK_DIR/members/$TASK/$(seeded_run "$METHOD" "$SEED")
mkdir -p "$OUT"
REGULARISER=()
[[ $METHOD == active || $METHOD == random ]] && REGULARISER=(--tau "$TAU")
fairseq-plugins-tickets "$(data_dir "$TASK")" --pretrained "$PRETRAINED" --out "$OUT" --method "$METHOD" \
    --members "$MEMBERS" --seed "$SEED" --target-ratio "$TARGET_RATIO" --rounds "$ROUNDS" "${REGULARISER[@]}" \
    -- "${OPTIONS[@]}" | tee "$OUT/tickets.log"
