#!/usr/bin/env bash
# train.sh EXPERIMENT: one fairseq-train run per experiment of the papers, on prepare.sh's data.
#
#   B2T (Takase et al. 2023), Transformer-base dims, 50k updates of ~460k tokens:
#     postln-6l preln-6l b2t-6l postln-18l preln-18l b2t-18l
#   SHAPE (Kiyono et al. 2021), Transformer-base, APE versus SHAPE with the authors' K sweep:
#     ape shape-k10 shape-k20 shape-k30 shape-k40 shape-k100 shape-k500
#   ALONE (Takase & Kobayashi 2020), Transformer-base, standard versus ALONE embeddings (D_inter 8192):
#     standard alone-binary alone-real
#
# The B2T settings are the paper's. SHAPE's K sweep and ALONE's lr 0.0015, dropout 0.2, ReLU dropout 0.15
# off after 4500 updates are their papers'; ALONE's 100k updates and --clip-norm 1.0 (for its standard
# baseline too) are the authors' public command. Their batch size is not given, so all reuse the B2T 6L
# setting (460k tokens per update; SHAPE also its 50k updates).
# GPUs are counted with nvidia-smi (GPUS=N overrides); --update-freq is derived so that
# MAX_TOKENS x GPUs x update-freq reaches TOKENS_PER_UPDATE, printed before training.
# Environment: WORK_DIR (as prepare.sh), SMALL=1 (2+2 layers, d=128, MAX_UPDATE 200 on CPU),
# MAX_TOKENS, TOKENS_PER_UPDATE, MAX_UPDATE, SEED (set: the run is named EXPERIMENT-seedSEED); extra
# arguments go to fairseq-train.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib.sh"
EXPERIMENTS="postln-6l preln-6l b2t-6l postln-18l preln-18l b2t-18l ape shape-k10 shape-k20 shape-k30 shape-k40 \
shape-k100 shape-k500 standard alone-binary alone-real"
[[ $# -ge 1 ]] || die "which experiment? one of: $EXPERIMENTS"
EXPERIMENT=$1; shift
prepared_work_dir wmt14_en_de

# Shared recipe (B2T paper): Adam (0.9, 0.98), lr 1e-3, inverse_sqrt with 4000 warmup updates,
# label smoothing 0.1, dropout 0.3, shared embeddings over the joined dictionary.
LR=1e-3 DROPOUT=0.3 WARMUP=4000
case $EXPERIMENT in
    postln-6l|preln-6l|b2t-6l|postln-18l|preln-18l|b2t-18l)
        residual=${EXPERIMENT%-*}; residual=${residual/postln/post_ln}; residual=${residual/preln/pre_ln}
        layers=${EXPERIMENT##*-}; layers=${layers%l}
        # Deeper stacks need more dropout (the B2T paper: 0.35-0.4 for deeper stacks).
        [[ $layers == 18 ]] && DROPOUT=0.35
        MODEL=(--arch composable_transformer --encoder-residual "$residual" --decoder-residual "$residual"
               --encoder-layers "$layers" --decoder-layers "$layers") ;;
    ape)
        MODEL=(--arch composable_transformer --positions sinusoidal) ;;
    shape-k*)
        k=${EXPERIMENT#shape-k}
        MODEL=(--arch shape_transformer --shape-max-shift "$k") ;;
    standard)  # ALONE's baseline: the authors' settings (100k updates, --clip-norm 1.0)
        LR=0.0015 DROPOUT=0.2 FULL_UPDATES=100000
        MODEL=(--arch composable_transformer --clip-norm 1.0) ;;
    alone-binary|alone-real)
        LR=0.0015 DROPOUT=0.2 FULL_UPDATES=100000
        MODEL=(--arch alone_transformer --alone-filter "${EXPERIMENT#alone-}" --alone-inter-dim 8192
               --alone-relu-dropout 0.15 --alone-relu-dropout-off-after 4500 --clip-norm 1.0) ;;
    *) die "unknown experiment $EXPERIMENT; one of: $EXPERIMENTS" ;;
esac

if [[ $SMALL == 1 ]]; then
    MODEL+=("${SMALL_TRANSFORMER[@]}")
    [[ $EXPERIMENT == alone-* ]] && MODEL+=(--alone-inter-dim 256)
    MAX_TOKENS=${MAX_TOKENS:-2048} TOKENS_PER_UPDATE=${TOKENS_PER_UPDATE:-2048} MAX_UPDATE=${MAX_UPDATE:-200}
    WARMUP=50 LR=2e-3 SAVE_EVERY=10
else
    MAX_TOKENS=${MAX_TOKENS:-7200} TOKENS_PER_UPDATE=${TOKENS_PER_UPDATE:-460000} MAX_UPDATE=${MAX_UPDATE:-${FULL_UPDATES:-50000}}
    SAVE_EVERY=1000
fi
train_seq2seq "$EXPERIMENT" "$@"
