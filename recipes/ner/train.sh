#!/usr/bin/env bash
# train.sh HEAD SEED [fairseq-train args...]: one run; HEAD is classifier or instance.
# Both heads: the same BiLSTM encoder (2 layers, 100 units, word vectors of --encoder-embed-dim, a
# character CNN of 50 filters with two highway layers, span vectors of 100 d, spans up to 6 tokens),
# Adam with the authors' decay lr / (1 + 0.05 epoch), gradient clipping 5, dropout 0.3, EPOCHS
# epochs, the best checkpoint by dev F1: the paper's lr 1e-3, batch 8, 100 epochs; SMALL=1: lr 2e-3,
# batch 16, 24 epochs (CPU-sized). GLOVE=FILE: the vocabulary is FILE's words
# (vectors frozen, as in the paper) plus the training words it lacks. Instance head: dot product,
# K = 50 sampled training sentences per batch.
. "$(dirname "$0")/common.sh"
[[ $# -ge 2 ]] || die "usage: train.sh HEAD SEED (HEAD: $HEADS)"
HEAD=$1 SEED=$2; shift 2
[[ " $HEADS " == *" $HEAD "* ]] || die "HEAD $HEAD: choose one of $HEADS"
[[ -e $DATA/train.conll ]] || die "no $DATA/train.conll; run prepare.sh first"
SAVE_DIR=$WORK_DIR/checkpoints/$(seeded_run "$HEAD" "$SEED")
mkdir -p "$SAVE_DIR"
fairseq-train "$DATA" --user-dir "$(fairseq-plugins-dir)" --task span_ner --max-span-length 6 \
    --arch span_ner_bilstm --span-head "$HEAD" --similarity dot --instance-sentences 50 --criterion span_ner \
    --optimizer adam --lr "$LR" "${MODEL_FLAGS[@]}" --batch-size "$BATCH" \
    --max-epoch "$EPOCHS" --seed "$SEED" --num-workers 0 --save-dir "$SAVE_DIR" --no-epoch-checkpoints \
    --no-save-optimizer-state --log-format simple --log-interval 50 --no-progress-bar "${TRAIN_FLAGS[@]}" \
    "${EMBEDDINGS[@]}" "$@" \
    2>&1 | tee "$SAVE_DIR/train.log"
trained "$SAVE_DIR/train.log"
