# Settings shared by the parsing recipe's scripts (sourced).
#   WORK_DIR  where everything goes (default ./parsing-work)
#   SMALL=1   the Turkish web treebank of the turkish-treebanks package, split 80/10/10 with a fixed
#             seed, a CPU-sized BiLSTM and EPOCHS (default 8) epochs; else UD English EWT (GPU)
#   SEEDS     training seeds (default "1 2 3"); EPOCHS, K (instance sentences per batch) override
#   INSTANCE_LABELS  the instance label head's rule: mass (default, the package's) or mean (the paper's equation)
#   CHARS=1   character features: a character CNN (50 filters of width 3 over 30-d characters) and
#             two highway layers added to each word vector (the NER recipe's setting)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/../lib.sh"
work_dir parsing-work
DATA=$WORK_DIR/data
SMALL=${SMALL:-0}
SEEDS=${SEEDS:-"1 2 3"}
METHODS="weight instance-dot instance-cosine"
INSTANCE_LABELS=${INSTANCE_LABELS:-mass}
CHARS=${CHARS:-0}
TREEBANK="python $HERE/treebank.py"
if [[ $SMALL == 1 ]]; then
    EPOCHS=${EPOCHS:-8} K=${K:-32}
    MODEL_SIZE=(--encoder-embed-dim 64 --encoder-hidden-dim 64 --mlp-dim 64 --edge-dim 64)
    DEVICE=(--cpu --num-workers 0)
    EXCLUDE_LABELS=ig  # inflectional-group rows: also reported without them
else
    EPOCHS=${EPOCHS:-50} K=${K:-32}
    MODEL_SIZE=()
    DEVICE=(--num-workers 2)
    EXCLUDE_LABELS=
fi
if [[ $CHARS == 1 ]]; then
    MODEL_SIZE+=(--char-embed-dim 30 --char-filters 50 --char-kernel-width 3)
fi
