# Settings shared by the influence recipe's scripts (sourced). SMALL=1: sklearn digits, one seed.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/../lib.sh"
work_dir influence-work
RAW_DIR=${RAW_DIR:-/usr/share/datasets/fashion-mnist}
if [ "${SMALL:-0}" = 1 ]; then
    SOURCE=(--source digits)
    EPOCHS=25; SAVE_EVERY=5; SEEDS="1"
else
    SOURCE=(--source fashion-mnist --raw-dir "$RAW_DIR" --train-size 6000 --valid-size 500)
    EPOCHS=30; SAVE_EVERY=5; SEEDS="1 2 3"
fi
MODEL=(--task image_classification --arch turnover_image_mlp --hidden-dim 128 --hidden-layers 2
       --criterion turnover_cross_entropy)
