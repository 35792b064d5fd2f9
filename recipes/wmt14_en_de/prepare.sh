#!/usr/bin/env bash
# WMT14 English-German as in fairseq's examples/translation (prepare-wmt14en2de.sh sources):
# Europarl v7, Common Crawl and News Commentary v9 for training, newstest2013 for validation,
# newstest2014 (full) for test and newstest2010-2016 for the B2T paper's average.
#   download -> extract -> sgm to text -> clean (Moses punctuation normalisation, length filter)
#   -> joint sentencepiece (32k) -> encode -> fairseq-preprocess --joined-dictionary
# Environment:
#   WORK_DIR=DIR      every output under DIR (default: ./wmt14_en_de)
#   RAW_DIR=DIR       skip the download: read plain-text {train,valid,test}.{en,de} from DIR
#                     (test is scored as newstest2014)
#   SMALL=1           small local data: RAW_DIR, or without it the package's toy corpus; vocabulary 1000
#   WMT14_MIRROR=URL  fetch every archive from URL/<file name> instead of its official address
#   SPM_VOCAB=N       sentencepiece vocabulary size (default 32000, 1000 with SMALL=1)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib.sh"
new_work_dir wmt14_en_de
TEST_YEARS=(2014 2010 2011 2012 2013 2015 2016)  # test, test1, ... in data-bin: evaluate.sh reads this order
URLS=(
    http://statmt.org/wmt13/training-parallel-europarl-v7.tgz
    http://statmt.org/wmt13/training-parallel-commoncrawl.tgz
    http://statmt.org/wmt14/training-parallel-nc-v9.tgz
    http://data.statmt.org/wmt17/translation-task/dev.tgz
    http://statmt.org/wmt14/test-full.tgz
)
DOWNLOAD_HINT="check the network, or download it by hand into $WORK_DIR/downloads/, or set WMT14_MIRROR=URL of a copy"
need_python sacremoses sacremoses
need_python sentencepiece sentencepiece
need fairseq-preprocess "pip install fairseq-fixed (see the README's Install)"

raw_text() {  # plain-text {train,valid,newstest*}.{en,de} in $TEXT, before cleaning of train
    mkdir -p "$TEXT"
    if [[ -n "${RAW_DIR:-}" ]]; then
        for f in {train,valid,test}.{en,de}; do [[ -s "$RAW_DIR/$f" ]] || die "RAW_DIR=$RAW_DIR lacks $f (need {train,valid,test}.{en,de})"; done
        for lang in en de; do
            cp "$RAW_DIR/train.$lang" "$TEXT/train.raw.$lang"
            cp "$RAW_DIR/valid.$lang" "$TEXT/valid.$lang"
            cp "$RAW_DIR/test.$lang" "$TEXT/newstest2014.$lang"
        done
        return
    fi
    if [[ $SMALL == 1 ]]; then
        say "SMALL=1 without RAW_DIR: the package's toy corpus (an invented target language as 'de')"
        python -c "from fairseq_plugins.synthetic_translation import write_corpus as w; \
w('$TEXT/toy', (('train', 3000), ('valid', 100), ('test', 120)), src='en', tgt='de')"
        for lang in en de; do
            mv "$TEXT/toy/train.$lang" "$TEXT/train.raw.$lang"; mv "$TEXT/toy/valid.$lang" "$TEXT/valid.$lang"
            mv "$TEXT/toy/test.$lang" "$TEXT/newstest2014.$lang"
        done
        rmdir "$TEXT/toy"
        return
    fi
    local url orig=$WORK_DIR/orig
    for url in "${URLS[@]}"; do
        fetch "$(source_url "$url" "${WMT14_MIRROR:-}")" "$WORK_DIR/downloads/$(basename "$url")" is_gzip_tar
    done
    rm -rf "$orig" && mkdir -p "$orig"
    for url in "${URLS[@]}"; do tar -xzf "$WORK_DIR/downloads/$(basename "$url")" -C "$orig"; done
    for lang in en de; do
        cat "$orig"/training/europarl-v7.de-en.$lang "$orig"/commoncrawl.de-en.$lang \
            "$orig"/training/news-commentary-v9.de-en.$lang > "$TEXT/train.raw.$lang"
    done
    local year lang sgm
    for year in "${TEST_YEARS[@]}"; do
        for lang in en de; do
            # test-full/ holds the full newstest2014 (3003 sentences); dev/ the other years.
            sgm=$(ls "$orig"/test-full/newstest${year}-*.$lang.sgm 2>/dev/null || ls "$orig"/dev/newstest${year}*.$lang.sgm 2>/dev/null || true)
            sgm=${sgm%%$'\n'*}
            [[ -n "$sgm" ]] || die "no newstest$year .$lang.sgm in the extracted archives under $orig"
            python "$TEXT_TOOLS" sgm "$sgm" "$TEXT/newstest$year.$lang"
        done
    done
    for lang in en de; do cp "$TEXT/newstest2013.$lang" "$TEXT/valid.$lang"; done
}

if ! step_done text; then raw_text; mark_done text; fi

if ! step_done clean; then
    python "$TEXT_TOOLS" clean "$TEXT"/train.raw.{en,de} "$TEXT"/train.{en,de}
    mark_done clean
fi

test_sets() { local y; for y in "${TEST_YEARS[@]}"; do if [[ -e "$TEXT/newstest$y.en" ]]; then echo "newstest$y"; fi; done; }

sentencepiece_steps en de train valid $(test_sets)

if ! step_done preprocess; then
    binarize en de "$(test_sets | sed "s|^|$ENCODED/|" | paste -sd,)"
    test_sets > "$DATA/test_sets.txt"  # split test, test1, ... in this order
    mark_done preprocess
fi
say "data ready: $DATA ($(wc -l < "$DATA/test_sets.txt") test sets: $(paste -sd' ' "$DATA/test_sets.txt"))"
