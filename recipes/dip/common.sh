# Shared settings of the DIP recipe (sourced by the other scripts).
#   WORK_DIR  where everything goes (default dip)
#   SMALL=1   sklearn digits, one seed, 2 epochs: every step in about a minute on 2 CPU cores
#   RAW_DIR   a directory with the Fashion-MNIST IDX files (default: where prepare.sh finds them)
#   REGIME=overfit  the regime where mixing regularises: 2,000 training images (seeded subset),
#             3 hidden layers of 1024, 100 epochs, so ERM drives its training loss to about zero
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/../lib.sh"
SMALL=${SMALL:-0}
work_dir dip
METHODS="erm mixup0.2 mixup1.0 dip"
if [[ $SMALL == 1 ]]; then
    SEEDS=${SEEDS:-1}
    EPOCHS=${EPOCHS:-2}
    EVAL_SAMPLES=${EVAL_SAMPLES:-1,4}
    DATA_FLAGS=(--data-format sklearn_digits)
else
    SEEDS=${SEEDS:-"1 2 3"}
    EPOCHS=${EPOCHS:-8}
    EVAL_SAMPLES=${EVAL_SAMPLES:-1,4,16,64}
    DATA_FLAGS=(--data-format idx --valid-size 5000)
fi
HIDDEN=(--hidden-dim 256 --hidden-layers 2) VALIDATE=()
if [[ ${REGIME:-} == overfit ]]; then
    TRAIN_SIZE=${TRAIN_SIZE:-2000}
    EPOCHS=${EPOCHS_OVERFIT:-100}
    HIDDEN=(--hidden-dim 1024 --hidden-layers 3)
    VALIDATE=(--validate-interval 10)  # DIP validates with 8 mixes of 5,000 images: most of the time otherwise
    DATA_FLAGS=(--data-format npz)
elif [[ -n ${REGIME:-} ]]; then
    die "REGIME=$REGIME: leave it unset (the 60k-image study) or set overfit"
fi
DATA=$WORK_DIR/data
