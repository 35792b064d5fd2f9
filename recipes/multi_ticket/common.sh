# Shared settings of the multi-ticket recipe (sourced by prepare/train/evaluate.sh).
#   WORK_DIR        where everything goes (default multi_ticket)
#   SMALL=1         CPU-sized: a tiny RoBERTa pretrained here (masked LM on local English text), tickets on
#                   Debian package descriptions labelled by Section (see package_sections.py)
#   TASKS           full mode: GLUE tasks (default "MRPC STS-B"); SMALL=1: "sections"
#   METHODS         default "dense bagging base active random"
#   MEMBERS         members per seed group (default 10; SMALL=1: 3)
#   SEED_GROUPS     first seed of each group of members (default "1 101": the paper's 20 seeds in two groups)
#   COMBINATIONS    sub-ensemble sizes averaged by evaluate.sh (default: the paper's 2..min(5, MEMBERS))
#   TAU             weight of the ACTIVE/RANDOM-LT regulariser (not published; default 1e-3, SMALL=1: 1e-2)
#   EPOCHS          finetuning epochs of every run (default 3; SMALL=1: 4)
#   PRETRAIN_UPDATES  SMALL=1: masked-LM updates of the tiny RoBERTa (default 600)
#   RESULTS_DIR     where evaluate.sh writes results.json and table.md (default $WORK_DIR/results)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/../lib.sh"
SMALL=${SMALL:-0}
COMBINATIONS=${COMBINATIONS:-}
work_dir multi_ticket
METHODS=${METHODS:-"dense bagging base active random"}
SEED_GROUPS=${SEED_GROUPS:-"1 101"}
RESULTS_DIR=${RESULTS_DIR:-$WORK_DIR/results}
PRETRAINED=$WORK_DIR/pretrained/model.pt
TARGET_RATIO=0.3 ROUNDS=3
if [[ $SMALL == 1 ]]; then
    TASKS=${TASKS:-sections}
    MEMBERS=${MEMBERS:-3}
    TAU=${TAU:-1e-2}
    EVAL_SUBSET=test
    MODEL=(--arch roberta_base --encoder-layers 2 --encoder-embed-dim 64 --encoder-ffn-embed-dim 256
           --encoder-attention-heads 2 --max-positions 128)
    EPOCHS=${EPOCHS:-4} BATCH=16 LR=2e-3
    PRETRAIN_UPDATES=${PRETRAIN_UPDATES:-600}
else
    TASKS=${TASKS:-"MRPC STS-B"}
    MEMBERS=${MEMBERS:-10}
    TAU=${TAU:-1e-3}
    EVAL_SUBSET=valid  # GLUE's dev set, as the paper reports (test labels are hidden)
    MODEL=(--arch roberta_base --max-positions 512)
    EPOCHS=${EPOCHS:-3} BATCH=32 LR=2e-5
fi
data_dir() { echo "$WORK_DIR/data-bin/$1"; }

# train_size TASK: training examples (the label file of the binarized data has one line each)
train_size() { python -c "import sys; print(sum(1 for _ in open(sys.argv[1])))" "$WORK_DIR/text/$1/train.label"; }

# finetune_options TASK: fairseq-train options of one finetune (fairseq-plugins-tickets adds the LR schedule)
finetune_options() {
    local task=$1 size updates classes
    size=$(train_size "$task")
    updates=$(( EPOCHS * ((size + BATCH - 1) / BATCH) ))
    local options=(--task sentence_prediction --init-token 0 --separator-token 2 "${MODEL[@]}"
                   --criterion sentence_prediction --optimizer adam --adam-betas "(0.9,0.98)" --adam-eps 1e-6
                   --lr "$LR" --weight-decay 0.01 --warmup-updates $(( updates * 6 / 100 )) --max-update "$updates"
                   --batch-size "$BATCH" --dropout 0.1 --attention-dropout 0.1 --required-batch-size-multiple 1
                   --no-epoch-checkpoints --no-progress-bar --log-format simple --log-interval 10 --num-workers 0)
    if [[ $task == STS-B ]]; then
        options+=(--num-classes 1 --regression-target --best-checkpoint-metric loss)
    else
        classes=$(sort -u "$WORK_DIR/text/$task/train.label" | wc -l)
        options+=(--num-classes "$classes" --best-checkpoint-metric accuracy --maximize-best-checkpoint-metric)
    fi
    printf '%s\n' "${options[@]}"
}
