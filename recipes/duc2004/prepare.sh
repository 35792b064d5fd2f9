#!/usr/bin/env bash
# Headline generation as in the ALONE paper: Gigaword (Rush et al. 2015 preprocessing: first
# sentence -> headline, lowercased) for training and validation, DUC 2004 task 1 for test.
#   download Gigaword -> take DUC 2004 from DUC2004_DIR -> joint sentencepiece -> encode
#   -> fairseq-preprocess --joined-dictionary (source "article", target "headline")
# DUC 2004 is licensed by NIST (https://duc.nist.gov/data.html) and cannot be downloaded here: give
# DUC2004_DIR=DIR holding input.txt (one article a line) and task1_ref0.txt .. task1_ref3.txt (the
# four reference headlines), the layout of Rush et al.'s release.
# Environment:
#   WORK_DIR=DIR        every output under DIR (default: ./duc2004)
#   RAW_DIR=DIR         skip download and DUC: read plain-text {train,valid,test}.{article,headline}
#   SMALL=1             small local data: RAW_DIR, or without it real package descriptions of this
#                       machine (package_descriptions.py); vocabulary 1000
#   GIGAWORD_URL=URL    where the Gigaword archive (summary.tar.gz, sumdata/ layout) is fetched from
#   SPM_VOCAB=N         sentencepiece vocabulary size (default 32000, 1000 with SMALL=1)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib.sh"
new_work_dir duc2004
# Rush et al.'s preprocessed Gigaword, as linked from github.com/harvardnlp/sent-summary.
GIGAWORD_URL=${GIGAWORD_URL:-https://drive.google.com/uc?export=download&id=0B6N7tANPyVeBNmlSX19Ld2xDU1E}
GIGAWORD_ARCHIVE=$WORK_DIR/downloads/summary.tar.gz
DOWNLOAD_HINT="download Rush et al.'s summary.tar.gz by hand to $GIGAWORD_ARCHIVE, or set GIGAWORD_URL"
need_python sentencepiece sentencepiece
need fairseq-preprocess "pip install fairseq-fixed (see the README's Install)"

check_duc() {
    local missing=() f
    [[ -n "${DUC2004_DIR:-}" ]] || die "DUC 2004 (the test set) is licensed by NIST and is not downloaded:" \
        "get it from https://duc.nist.gov/data.html and set DUC2004_DIR=DIR with input.txt and task1_ref0.txt .. task1_ref3.txt" \
        "(or RAW_DIR=DIR with your own {train,valid,test}.{article,headline})"
    for f in input.txt task1_ref{0,1,2,3}.txt; do [[ -s "$DUC2004_DIR/$f" ]] || missing+=("$f"); done
    (( ${#missing[@]} == 0 )) || die "DUC2004_DIR=$DUC2004_DIR lacks ${missing[*]} (need input.txt and task1_ref0.txt .. task1_ref3.txt)"
}

raw_text() {  # {train,valid,test}.{article,headline} and test.ref0.. in $TEXT
    mkdir -p "$TEXT"
    local split side
    if [[ -n "${RAW_DIR:-}" ]]; then
        for f in {train,valid,test}.{article,headline}; do
            [[ -s "$RAW_DIR/$f" ]] || die "RAW_DIR=$RAW_DIR lacks $f (need {train,valid,test}.{article,headline})"
            cp "$RAW_DIR/$f" "$TEXT/$f"
        done
    elif [[ $SMALL == 1 ]]; then
        python "$HERE/package_descriptions.py" "$TEXT"
    else
        check_duc  # before a long download: a missing licensed test set stops at once
        fetch "$GIGAWORD_URL" "$GIGAWORD_ARCHIVE" is_gzip_tar
        rm -rf "$WORK_DIR/orig" && mkdir -p "$WORK_DIR/orig"
        tar -xzf "$GIGAWORD_ARCHIVE" -C "$WORK_DIR/orig"
        local sumdata=$WORK_DIR/orig/sumdata/train
        for f in train.article.txt train.title.txt valid.article.filter.txt valid.title.filter.txt; do
            [[ -s "$sumdata/$f" ]] || die "$GIGAWORD_ARCHIVE lacks sumdata/train/$f (not Rush et al.'s release?)"
        done
        cp "$sumdata/train.article.txt" "$TEXT/train.article"; cp "$sumdata/train.title.txt" "$TEXT/train.headline"
        cp "$sumdata/valid.article.filter.txt" "$TEXT/valid.article"; cp "$sumdata/valid.title.filter.txt" "$TEXT/valid.headline"
        cp "$DUC2004_DIR/input.txt" "$TEXT/test.article"
        for i in 0 1 2 3; do cp "$DUC2004_DIR/task1_ref$i.txt" "$TEXT/test.ref$i"; done
        # fairseq-preprocess wants a target side for the test split; the first reference serves.
        cp "$TEXT/test.ref0" "$TEXT/test.headline"
        return
    fi
    cp "$TEXT/test.headline" "$TEXT/test.ref0"
}

if [[ -z "${RAW_DIR:-}" && $SMALL != 1 ]]; then check_duc; fi
if ! step_done text; then raw_text; mark_done text; fi

sentencepiece_steps article headline train valid test

if ! step_done preprocess; then
    binarize article headline "$ENCODED/test"
    mark_done preprocess
fi
say "data ready: $DATA (test: $(wc -l < "$TEXT/test.article") articles, $(ls "$TEXT"/test.ref* | wc -l) reference(s) each)"
