#!/usr/bin/env bash
# train.sh TREATMENT [LR [FAIRSEQ_ARGS...]]: one run of the comparison, TREATMENT in vanilla | scaled | layernorm
# (Spike No More's embedding treatments; every run: Pre-LN, "small" init, learned positions, tied
# embeddings, i.e. the spike_transformer_lm family). The log goes to $LOG_DIR/<run>.log (default
# $WORK_DIR/logs) with spike counts (--detect-loss-spikes) and per-layer gradient norms every 50 updates.
# Extra arguments go to fairseq-train (e.g. --decoder-layers 8: fairseq takes the last flag); RUN_NAME
# names the run instead of TREATMENT-lrLR. A run that diverges (non-finite gradients stop
# fairseq-train) is recorded as such (<run>.diverged beside the log), not as an error.
set -euo pipefail
. "$(dirname "$0")/common.sh"
TREATMENT=${1:?usage: train.sh vanilla|scaled|layernorm [LR]}
RUN_LR=${2:-$LR}
shift $(( $# < 2 ? $# : 2 ))
[[ " ${TREATMENTS[*]} " == *" $TREATMENT "* ]] || die "treatment must be one of ${TREATMENTS[*]} (got $TREATMENT)"
[[ -s "$DATA/dict.txt" ]] || die "no data in $DATA; run prepare.sh first"
NAME=${RUN_NAME:-$(run_name "$TREATMENT" "$RUN_LR")}
LOG_DIR=${LOG_DIR:-$WORK_DIR/logs}
mkdir -p "$LOG_DIR"
LOG=$LOG_DIR/$NAME.log
rm -f "$LOG_DIR/$NAME.diverged"
say "train $NAME ($ARCH, $MAX_UPDATE updates)"
if ! fairseq-train "$DATA" --user-dir "$(fairseq-plugins-dir)" --task monitored_language_modeling \
    --arch "$ARCH" --embed-treatment "$TREATMENT" --tokens-per-sample $TOKENS_PER_SAMPLE --sample-break-mode none \
    --max-tokens $MAX_TOKENS --optimizer adam --adam-betas "(0.9, 0.98)" --weight-decay 0.01 \
    --lr "$RUN_LR" --lr-scheduler inverse_sqrt --warmup-updates $WARMUP --warmup-init-lr 1e-07 \
    --max-update "$MAX_UPDATE" --detect-loss-spikes --spike-factor "$SPIKE_FACTOR" --layer-grad-norm-interval 50 \
    --save-dir "$WORK_DIR/checkpoints/$NAME" --no-epoch-checkpoints --seed 1 \
    --log-format simple --log-interval 10 --no-progress-bar "$@" > "$LOG" 2>&1; then
    if grep -q "FloatingPointError\|gradients are Nan/Inf" "$LOG"; then
        touch "$LOG_DIR/$NAME.diverged"
        say "$NAME diverged (non-finite gradients); see $LOG"
    else
        tail -n 20 "$LOG" >&2
        die "fairseq-train failed for $NAME; see $LOG"
    fi
fi
