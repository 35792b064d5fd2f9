#!/usr/bin/env bash
# train.sh TREATMENT [LR]: one run of the comparison, TREATMENT in vanilla | scaled | layernorm
# (Spike No More's embedding treatments; every run: Pre-LN, "small" init, learned positions, tied
# embeddings, i.e. the spike_transformer_lm family). The log goes to $WORK_DIR/logs/<run>.log with
# spike counts (--detect-loss-spikes) and per-layer gradient norms every 50 updates.
# A run that diverges (non-finite gradients stop fairseq-train) is recorded as such, not as an error.
set -euo pipefail
. "$(dirname "$0")/common.sh"
TREATMENT=${1:?usage: train.sh vanilla|scaled|layernorm [LR]}
RUN_LR=${2:-$LR}
[[ " ${TREATMENTS[*]} " == *" $TREATMENT "* ]] || die "treatment must be one of ${TREATMENTS[*]} (got $TREATMENT)"
[[ -s "$DATA/dict.txt" ]] || die "no data in $DATA; run prepare.sh first"
NAME=$(run_name "$TREATMENT" "$RUN_LR")
mkdir -p "$WORK_DIR/logs"
LOG=$WORK_DIR/logs/$NAME.log
rm -f "$WORK_DIR/logs/$NAME.diverged"
say "train $NAME ($ARCH, $MAX_UPDATE updates)"
if ! fairseq-train "$DATA" --user-dir "$(fairseq-plugins-dir)" --task monitored_language_modeling \
    --arch "$ARCH" --embed-treatment "$TREATMENT" --tokens-per-sample $TOKENS_PER_SAMPLE --sample-break-mode none \
    --max-tokens $MAX_TOKENS --optimizer adam --adam-betas "(0.9, 0.98)" --weight-decay 0.01 \
    --lr "$RUN_LR" --lr-scheduler inverse_sqrt --warmup-updates $WARMUP --warmup-init-lr 1e-07 \
    --max-update "$MAX_UPDATE" --detect-loss-spikes --spike-factor "$SPIKE_FACTOR" --layer-grad-norm-interval 50 \
    --save-dir "$WORK_DIR/checkpoints/$NAME" --no-epoch-checkpoints --seed 1 \
    --log-format simple --log-interval 10 --no-progress-bar > "$LOG" 2>&1; then
    if grep -q "FloatingPointError\|gradients are Nan/Inf" "$LOG"; then
        touch "$WORK_DIR/logs/$NAME.diverged"
        say "$NAME diverged (non-finite gradients); see $LOG"
    else
        tail -n 20 "$LOG" >&2
        die "fairseq-train failed for $NAME; see $LOG"
    fi
fi
