#!/usr/bin/env bash
# train.sh EXPERIMENT: headline generation of the ALONE paper (Takase & Kobayashi 2020), Transformer
# base dims with a length-controlled decoder (LDPE by default; POSITIONS=lrpe for LRPE, both of
# Takase & Okazaki 2019, length counted in characters so that decoding can ask for 75 bytes):
#     standard      standard embeddings
#     alone-binary  ALONE, binary filters, FFN inner dimension 1024 (the paper's headline setting)
#     alone-real    ALONE, real filters, inner dimension 1024
# METHODS.md pins D_inter 1024, beam 5 and the 75-byte ROUGE; the optimisation settings are not
# pinned there, so they are the WMT recipe's (Adam (0.9, 0.98), lr 1e-3, inverse_sqrt with 4000
# warmup updates, dropout 0.3, label smoothing 0.1) with TOKENS_PER_UPDATE=65536 and MAX_UPDATE=30000
# as this recipe's own choice. GPUs and --update-freq as in recipes/wmt14_en_de/train.sh.
# Environment: WORK_DIR (as prepare.sh), SMALL=1 (2+2 layers, d=128, MAX_UPDATE 200 on CPU),
# POSITIONS, MAX_TOKENS, TOKENS_PER_UPDATE, MAX_UPDATE, SEED; extra arguments go to fairseq-train.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib.sh"
EXPERIMENTS="standard alone-binary alone-real"
[[ $# -ge 1 ]] || die "which experiment? one of: $EXPERIMENTS"
EXPERIMENT=$1; shift
WORK_DIR=$(cd "${WORK_DIR:-duc2004}" 2>/dev/null && pwd) || die "WORK_DIR ${WORK_DIR:-duc2004} not found; run prepare.sh first"
DATA=$WORK_DIR/data-bin
[[ -e "$WORK_DIR/.done/preprocess" ]] || die "no binarized data in $DATA; run prepare.sh first"
SMALL=${SMALL:-0} POSITIONS=${POSITIONS:-ldpe}
[[ $POSITIONS == lrpe || $POSITIONS == ldpe ]] || die "POSITIONS must be lrpe or ldpe (got $POSITIONS)"

MODEL=(--arch composable_transformer --positions "$POSITIONS" --length-unit chars)
case $EXPERIMENT in
    standard) ;;
    alone-binary|alone-real) MODEL+=(--embeddings alone --alone-filter "${EXPERIMENT#alone-}" --alone-inter-dim 1024) ;;
    *) die "unknown experiment $EXPERIMENT; one of: $EXPERIMENTS" ;;
esac

LR=1e-3 WARMUP=4000 DROPOUT=0.3
if [[ $SMALL == 1 ]]; then
    MODEL+=(--encoder-layers 2 --decoder-layers 2 --encoder-embed-dim 128 --decoder-embed-dim 128
            --encoder-ffn-embed-dim 256 --decoder-ffn-embed-dim 256 --encoder-attention-heads 4
            --decoder-attention-heads 4)
    [[ $EXPERIMENT == alone-* ]] && MODEL+=(--alone-inter-dim 256)
    MAX_TOKENS=${MAX_TOKENS:-2048} TOKENS_PER_UPDATE=${TOKENS_PER_UPDATE:-2048} MAX_UPDATE=${MAX_UPDATE:-200}
    # Less dropout than the paper's 0.3: 200 updates on ~600 pairs otherwise learn little more than
    # word frequencies (and an empty headline: end of sentence is the most frequent target token).
    WARMUP=50 LR=2e-3 DROPOUT=0.1 SAVE_EVERY=10 EXTRA=(--cpu --num-workers 0) gpus=0
else
    MAX_TOKENS=${MAX_TOKENS:-8192} TOKENS_PER_UPDATE=${TOKENS_PER_UPDATE:-65536} MAX_UPDATE=${MAX_UPDATE:-30000}
    SAVE_EVERY=1000 EXTRA=(--fp16 --num-workers 4)
    gpus=$(gpu_count)
    (( gpus > 0 )) || die "no GPU found (nvidia-smi); set GPUS=N, or SMALL=1 for the CPU-sized run"
fi
freq=$(update_freq "$TOKENS_PER_UPDATE" "$MAX_TOKENS" "$gpus")
say "$EXPERIMENT ($POSITIONS): $(( gpus > 0 ? gpus : 1 )) device(s) x --max-tokens $MAX_TOKENS x --update-freq $freq" \
    "= $(( MAX_TOKENS * (gpus > 0 ? gpus : 1) * freq )) tokens per update (target $TOKENS_PER_UPDATE), $MAX_UPDATE updates"

SAVE_DIR=$WORK_DIR/checkpoints/$EXPERIMENT
mkdir -p "$SAVE_DIR"
fairseq-train "$DATA" --user-dir "$(fairseq-plugins-dir)" "${MODEL[@]}" --share-all-embeddings \
    --optimizer adam --adam-betas "(0.9, 0.98)" --lr "$LR" --lr-scheduler inverse_sqrt --warmup-updates "$WARMUP" \
    --warmup-init-lr 1e-07 --dropout "$DROPOUT" --criterion label_smoothed_cross_entropy --label-smoothing 0.1 \
    --max-tokens "$MAX_TOKENS" --update-freq "$freq" --max-update "$MAX_UPDATE" \
    --save-dir "$SAVE_DIR" --save-interval-updates "$SAVE_EVERY" --keep-interval-updates 10 --no-epoch-checkpoints \
    --seed "${SEED:-1}" --log-format simple --log-interval "$(( SMALL == 1 ? 50 : 100 ))" --no-progress-bar \
    "${EXTRA[@]}" "$@" 2>&1 | tee -a "$SAVE_DIR/train.log"
grep -q "done training" "$SAVE_DIR/train.log" || die "fairseq-train did not finish; see $SAVE_DIR/train.log"
