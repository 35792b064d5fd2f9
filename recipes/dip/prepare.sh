#!/usr/bin/env bash
# prepare.sh: put Fashion-MNIST's four IDX files (gzip) in $WORK_DIR/data.
#   RAW_DIR=DIR: take them from DIR; else /usr/share/datasets/fashion-mnist (Debian/Ubuntu:
#   apt-get install dataset-fashion-mnist); else download them from the dataset's authors.
#   SMALL=1: sklearn digits, which ship inside scikit-learn: nothing to prepare.
. "$(dirname "$0")/common.sh"
mkdir -p "$DATA"
[[ $SMALL == 1 ]] && { echo "SMALL=1: sklearn digits (inside scikit-learn), nothing to prepare"; exit 0; }
FILES="train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz"
SOURCE=${RAW_DIR:-/usr/share/datasets/fashion-mnist}
URL=http://fashion-mnist.s3-website.eu-central-1.amazonaws.com
for file in $FILES; do
    [[ -e $DATA/$file ]] && continue
    if [[ -e $SOURCE/$file ]]; then
        ln -s "$SOURCE/$file" "$DATA/$file"
    elif [[ -n ${RAW_DIR:-} ]]; then
        die "RAW_DIR=$RAW_DIR has no $file"
    else
        curl -fsSL -o "$DATA/$file" "$URL/$file" || die "could not download $URL/$file"
    fi
done
echo "Fashion-MNIST in $DATA"
if [[ ${REGIME:-} == overfit ]]; then
    # A seeded subset of the training images as npz (clean labels), 5,000 held out for validation.
    python "$HERE/../influence/noisy_labels.py" --source fashion-mnist --raw-dir "$DATA" --noise 0 \
        --train-size "$TRAIN_SIZE" --valid-size 5000 --out "$DATA"
fi
