#!/usr/bin/env bash
# prepare.sh: binarized data for every task in $TASKS and the pretrained model $WORK_DIR/pretrained/model.pt.
# Full mode, as fairseq's RoBERTa GLUE example: fairseq's RoBERTa-base (dl.fbaipublicfiles.com) and its
#   GPT-2 BPE; GLUE MRPC and STS-B from GLUE_DIR (a directory with MRPC/ and STS-B/ holding train.tsv and
#   dev.tsv, e.g. from GLUE's download_glue_data.py) or downloaded (STS-B.zip, and MRPC from SentEval's
#   copy of the MSR paraphrase corpus with GLUE's dev ids). MIRROR=URL fetches every file from URL/<name>.
# SMALL=1: package_sections.py writes Debian package descriptions labelled by Section and the masked-LM
#   text (licences + training descriptions); a word dictionary; then a tiny RoBERTa is pretrained with
#   fairseq's masked_lm task ($PRETRAIN_UPDATES updates: 600, about three minutes on one CPU core).
. "$(dirname "$0")/common.sh"
DOWNLOAD_HINT="set MIRROR=URL to a copy of the files, or GLUE_DIR for the GLUE data"
TEXT=$WORK_DIR/text
mkdir -p "$TEXT" "$WORK_DIR/pretrained"

binarize_task() {  # binarize_task TASK DICT: text/TASK/{split}.{input0,input1,label} -> data-bin/TASK
    local task=$1 dict=$2 input dest splits=(train valid) split
    [[ -e $TEXT/$task/test.input0 ]] && splits+=(test)
    dest=$(data_dir "$task"); rm -rf "$dest"
    for input in input0 input1; do
        [[ -e $TEXT/$task/train.$input ]] || continue
        fairseq-preprocess --only-source --srcdict "$dict" --workers 1 --destdir "$dest/$input" \
            --trainpref "$TEXT/$task/train.$input" --validpref "$TEXT/$task/valid.$input" \
            ${splits[2]:+--testpref "$TEXT/$task/test.$input"} > "$WORK_DIR/preprocess.log" 2>&1 \
            || { tail -5 "$WORK_DIR/preprocess.log" >&2; die "fairseq-preprocess failed on $task $input"; }
    done
    if [[ $task == STS-B ]]; then  # regression: sentence_prediction reads the raw scores
        mkdir -p "$dest/label"
        for split in "${splits[@]}"; do cp "$TEXT/$task/$split.label" "$dest/label/$split.label"; done
    else
        fairseq-preprocess --only-source --workers 1 --destdir "$dest/label" --trainpref "$TEXT/$task/train.label" \
            --validpref "$TEXT/$task/valid.label" ${splits[2]:+--testpref "$TEXT/$task/test.label"} \
            > "$WORK_DIR/preprocess.log" 2>&1 || die "fairseq-preprocess failed on the $task labels"
    fi
}

if [[ $SMALL == 1 ]]; then
    if ! step_done text; then
        python "$HERE/package_sections.py" "$TEXT/sections" >&2
        mark_done text
    fi
    if ! step_done binarize; then
        rm -rf "$WORK_DIR/data-bin/pretrain"
        fairseq-preprocess --only-source --nwordssrc 6000 --workers 1 --destdir "$WORK_DIR/data-bin/pretrain" \
            --trainpref "$TEXT/sections/pretrain.train" --validpref "$TEXT/sections/pretrain.valid" \
            > "$WORK_DIR/preprocess.log" 2>&1 || die "fairseq-preprocess failed on the pretraining text"
        binarize_task sections "$WORK_DIR/data-bin/pretrain/dict.txt"
        mark_done binarize
    fi
    if ! step_done pretrain; then
        say "pretrain a tiny RoBERTa (masked LM) on $TEXT/sections/pretrain.train"
        fairseq-train "$WORK_DIR/data-bin/pretrain" --user-dir "$(fairseq-plugins-dir)" --task masked_lm \
            --criterion masked_lm "${MODEL[@]}" --sample-break-mode none --tokens-per-sample 128 --optimizer adam \
            --lr 1e-3 --lr-scheduler polynomial_decay --warmup-updates $(( PRETRAIN_UPDATES / 10 )) \
            --total-num-update "$PRETRAIN_UPDATES" --max-update "$PRETRAIN_UPDATES" \
            --batch-size 32 --dropout 0.1 --seed 1 --validate-interval 1000 --save-interval 1000 --num-workers 0 \
            --save-dir "$WORK_DIR/pretrained" --no-epoch-checkpoints --no-progress-bar --log-format simple \
            > "$WORK_DIR/pretrained/train.log" 2>&1 || { tail -5 "$WORK_DIR/pretrained/train.log" >&2; die "pretraining failed"; }
        ln -sf checkpoint_last.pt "$PRETRAINED"
        mark_done pretrain
    fi
    exit 0
fi

URL=https://dl.fbaipublicfiles.com
is_json() { python -c "import json, sys; json.load(open(sys.argv[1]))" "$1" 2>/dev/null; }
non_empty() { [[ -s $1 ]]; }
is_zip() { python -c "import zipfile, sys; zipfile.ZipFile(sys.argv[1]).testzip()" "$1" 2>/dev/null; }
fetch "$(source_url $URL/fairseq/models/roberta.base.tar.gz "${MIRROR:-}")" "$WORK_DIR/downloads/roberta.base.tar.gz" is_gzip_tar
fetch "$(source_url $URL/fairseq/gpt2_bpe/encoder.json "${MIRROR:-}")" "$WORK_DIR/downloads/encoder.json" is_json
fetch "$(source_url $URL/fairseq/gpt2_bpe/vocab.bpe "${MIRROR:-}")" "$WORK_DIR/downloads/vocab.bpe" non_empty
if ! step_done roberta; then
    tar -xzf "$WORK_DIR/downloads/roberta.base.tar.gz" -C "$WORK_DIR/downloads"
    ln -sf "$WORK_DIR/downloads/roberta.base/model.pt" "$PRETRAINED"
    mark_done roberta
fi
GLUE=${GLUE_DIR:-$WORK_DIR/glue}
if [[ -z ${GLUE_DIR:-} ]] && ! step_done glue; then
    fetch "$(source_url $URL/glue/data/STS-B.zip "${MIRROR:-}")" "$WORK_DIR/downloads/STS-B.zip" is_zip
    python -c "import zipfile, sys; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])" "$WORK_DIR/downloads/STS-B.zip" "$GLUE"
    fetch "$(source_url $URL/senteval/senteval_data/msr_paraphrase_train.txt "${MIRROR:-}")" "$WORK_DIR/downloads/msr_paraphrase_train.txt" non_empty
    fetch "$(source_url "https://firebasestorage.googleapis.com/v0/b/mtl-sentence-representations.appspot.com/o/data%2Fmrpc_dev_ids.tsv?alt=media&token=ec5c0836-31d5-48f4-b431-7480817f1adc" "${MIRROR:-}")" \
        "$WORK_DIR/downloads/mrpc_dev_ids.tsv" non_empty
    python - "$WORK_DIR/downloads" "$GLUE/MRPC" <<'PY'
import os, sys
downloads, out = sys.argv[1:3]
os.makedirs(out, exist_ok=True)
dev_ids = {tuple(line.strip().split("\t")) for line in open(os.path.join(downloads, "mrpc_dev_ids.tsv"), encoding="utf-8-sig")}
lines = open(os.path.join(downloads, "msr_paraphrase_train.txt"), encoding="utf-8-sig").read().splitlines()
with open(os.path.join(out, "train.tsv"), "w") as train, open(os.path.join(out, "dev.tsv"), "w") as dev:
    for file in (train, dev):
        file.write(lines[0] + "\n")
    for line in lines[1:]:
        fields = line.split("\t")
        (dev if (fields[1], fields[2]) in dev_ids else train).write(line + "\n")
PY
    mark_done glue
fi
if ! step_done binarize; then
    for task in $TASKS; do
        [[ -d $GLUE/$task ]] || die "$GLUE/$task not found (TASKS: MRPC STS-B)"
        python "$HERE/glue.py" "$task" "$GLUE/$task" "$WORK_DIR/downloads/encoder.json" "$WORK_DIR/downloads/vocab.bpe" "$TEXT/$task"
        binarize_task "$task" "$WORK_DIR/downloads/roberta.base/dict.txt"
    done
    mark_done binarize
fi
