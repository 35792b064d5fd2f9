#!/usr/bin/env bash
# train.sh EXPERIMENT: headline generation of the ALONE paper (Takase & Kobayashi 2020), Transformer
# base dims with a length-controlled decoder (LDPE by default; POSITIONS=lrpe for LRPE, both of
# Takase & Okazaki 2019, length counted in characters so that decoding can ask for 75 bytes):
#     standard      standard embeddings
#     alone-binary  ALONE, binary filters, FFN inner dimension 1024 (the paper's headline setting)
#     alone-real    ALONE, real filters, inner dimension 1024
# The ALONE paper gives D_inter 1024, beam 5 and the 75-byte ROUGE; the authors' public command adds
# the settings below (positions, ReLU dropout, clipping, ~229k tokens per update). The rest is the WMT
# recipe's (Adam (0.9, 0.98), lr 1e-3, inverse_sqrt with 4000 warmup updates, dropout 0.3, label
# smoothing 0.1), and MAX_UPDATE=30000 is this recipe's own choice (not stated by the authors). GPUs and --update-freq as in recipes/wmt14_en_de/train.sh.
# Environment: WORK_DIR (as prepare.sh), SMALL=1 (2+2 layers, d=128, MAX_UPDATE 200 on CPU),
# POSITIONS, MAX_TOKENS, TOKENS_PER_UPDATE, MAX_UPDATE, SEED; extra arguments go to fairseq-train.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib.sh"
EXPERIMENTS="standard alone-binary alone-real"
[[ $# -ge 1 ]] || die "which experiment? one of: $EXPERIMENTS"
EXPERIMENT=$1; shift
prepared_work_dir duc2004
# The authors' ALONE headline runs: LRPE added to the ordinary sinusoidal positions ("+PE"), lengths
# in characters, ReLU dropout 0.1 in the ALONE FFN switched off after 300 updates, --clip-norm 1.0.
POSITIONS=${POSITIONS:-lrpe+pe}
case $POSITIONS in lrpe|ldpe|lrpe+pe|ldpe+pe) ;; *) die "POSITIONS must be lrpe, ldpe, lrpe+pe or ldpe+pe (got $POSITIONS)" ;; esac

MODEL=(--arch composable_transformer --positions "$POSITIONS" --length-unit chars --clip-norm 1.0)
case $EXPERIMENT in
    standard) ;;
    alone-binary|alone-real) MODEL+=(--embeddings alone --alone-filter "${EXPERIMENT#alone-}" --alone-inter-dim 1024
                                     --alone-relu-dropout 0.1 --alone-relu-dropout-off-after 300) ;;
    *) die "unknown experiment $EXPERIMENT; one of: $EXPERIMENTS" ;;
esac

LR=1e-3 WARMUP=4000 DROPOUT=0.3
if [[ $SMALL == 1 ]]; then
    MODEL+=("${SMALL_TRANSFORMER[@]}")
    [[ $EXPERIMENT == alone-* ]] && MODEL+=(--alone-inter-dim 256)
    MAX_TOKENS=${MAX_TOKENS:-2048} TOKENS_PER_UPDATE=${TOKENS_PER_UPDATE:-2048} MAX_UPDATE=${MAX_UPDATE:-200}
    # Less dropout than the paper's 0.3: 200 updates on ~600 pairs otherwise learn little more than
    # word frequencies (and an empty headline: end of sentence is the most frequent target token).
    WARMUP=50 LR=2e-3 DROPOUT=0.1 SAVE_EVERY=10
else
    # ~229k tokens per update, as the authors' 8 GPUs x 3584 tokens x 8 accumulated batches.
    MAX_TOKENS=${MAX_TOKENS:-3584} TOKENS_PER_UPDATE=${TOKENS_PER_UPDATE:-229376} MAX_UPDATE=${MAX_UPDATE:-30000}
    SAVE_EVERY=1000
fi
train_seq2seq "$EXPERIMENT ($POSITIONS)" "$@"
