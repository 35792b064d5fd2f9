# Shell helpers shared by the recipes (sourced by their prepare/train/evaluate scripts).
# Every step writes a "<name>.done" marker when it finishes, so a re-run skips finished steps and an
# interrupted one starts over; downloads resume from their ".part" file.

# Every recipe's common.sh (or script) starts with:
#   set -euo pipefail
#   HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
#   . "$HERE/../lib.sh"
#   work_dir DEFAULT            # or new_work_dir / prepared_work_dir (seq2seq recipes)

die() { echo "$(basename "$0"): error: $*" >&2; exit 1; }
say() { echo "[$(basename "$(dirname "$0")")] $*" >&2; }

need() {  # need TOOL HINT: stop with what to do when a tool is missing
    command -v "$1" >/dev/null 2>&1 || die "$1 not found; $2"
}

need_python() {  # need_python MODULE PACKAGE
    python -c "import $1" 2>/dev/null || die "python module $1 not found; pip install $2"
}

# work_dir DEFAULT: WORK_DIR (default DEFAULT, relative to the current directory) created and made absolute.
work_dir() { WORK_DIR=$(mkdir -p "${WORK_DIR:-$1}" && cd "${WORK_DIR:-$1}" && pwd); }

# seeded_run NAME [SEED]: a run's name, NAME-seedS for seed S (default: $SEED when set, else just NAME), so
# that several seeds of one experiment keep their own checkpoints and results.
seeded_run() { local seed=${2-${SEED:-}}; echo "$1${seed:+-seed$seed}"; }

# last_validation LOG [SUBSET] [FIELD]: the last validation of SUBSET (default valid) that fairseq-train or
# fairseq-validate wrote to LOG, as "field value | ...", or one FIELD's value (fairseq_plugins.cli.fairseq_runs).
last_validation() {
    python -m fairseq_plugins.cli.fairseq_runs "$1" --valid-subset "${2:-valid}" ${3:+--field "$3"}
}

# trained LOG: stop unless fairseq-train finished the run whose output is LOG (a failure inside a pipe
# through tee would go unseen).
trained() { grep -q "done training" "$1" || die "fairseq-train did not finish; see $1"; }

# train_every_run METHODS SEEDS (run.sh): train.sh METHOD SEED for every seed and method, its output in the
# run's train.log ($WORK_DIR/checkpoints/METHOD-seedS), each followed by its last validation.
train_every_run() {
    local method seed run
    for seed in $2; do for method in $1; do
        run=$(seeded_run "$method" "$seed")
        bash "$HERE/train.sh" "$method" "$seed" > /dev/null
        say "$run: $(last_validation "$WORK_DIR/checkpoints/$run/train.log")"
    done; done
}

done_marker() { echo "$WORK_DIR/.done/$1"; }

step_done() {  # step_done NAME: true (and say so) when the step finished in an earlier run
    if [[ -e "$(done_marker "$1")" ]]; then say "skip $1 (done; remove $(done_marker "$1") to redo)"; return 0; fi
    return 1
}

mark_done() { mkdir -p "$WORK_DIR/.done"; touch "$(done_marker "$1")"; }

# fetch URL DEST CHECK: download to DEST.part (resuming a partial file), run CHECK on it, then rename.
# A partial file that does not pass CHECK once complete is deleted and downloaded again from scratch.
fetch() {
    local url=$1 dest=$2 check=$3 attempt ok
    if [[ -e "$dest" ]]; then say "skip download of $(basename "$dest") (present)"; return 0; fi
    need curl "install curl (apt-get install curl)"
    mkdir -p "$(dirname "$dest")"
    for attempt in resume restart; do
        if [[ $attempt == restart ]]; then rm -f "$dest.part"; fi
        if [[ -s "$dest.part" ]]; then say "resume $url after $(stat -c %s "$dest.part") bytes"; else say "download $url"; fi
        if curl -fsSL --retry 3 -C - -o "$dest.part" "$url" 2>"$dest.log"; then ok=1; else ok=0; fi
        # A part that was already complete makes curl fail (nothing left to resume): the check decides.
        if [[ -s "$dest.part" ]] && $check "$dest.part"; then mv "$dest.part" "$dest"; rm -f "$dest.log"; return 0; fi
        if (( !ok )) && [[ ! -s "$dest.part" ]]; then
            die "cannot download $url ($(tail -1 "$dest.log")); $DOWNLOAD_HINT"
        fi
        say "$(basename "$dest") is incomplete or corrupt after the $attempt; downloading it again"
    done
    die "$url: the downloaded file fails its check twice; $DOWNLOAD_HINT"
}

is_gzip_tar() { tar -tzf "$1" >/dev/null 2>&1; }

# mirrored URL: with a mirror every file is fetched from MIRROR/<its file name>.
source_url() {
    local url=$1 mirror=$2
    if [[ -n "$mirror" ]]; then echo "${mirror%/}/$(basename "$url")"; else echo "$url"; fi
}

# GPUs and --update-freq such that max_tokens x GPUs x update_freq >= TOKENS_PER_UPDATE (the paper's).
gpu_count() {
    if [[ -n "${GPUS:-}" ]]; then echo "$GPUS"
    elif command -v nvidia-smi >/dev/null 2>&1; then nvidia-smi -L | grep -c '^GPU'
    else echo 0; fi
}

update_freq() {  # update_freq TOKENS_PER_UPDATE MAX_TOKENS GPUS
    local devices=$(( $3 > 0 ? $3 : 1 ))
    echo $(( ($1 + $2 * devices - 1) / ($2 * devices) ))
}

# --- seq2seq recipes (wmt14_en_de, duc2004) --------------------------------------------------------

TEXT_TOOLS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/text_tools.py

# new_work_dir DEFAULT (prepare.sh): WORK_DIR (created, absolute) and the paths under it.
new_work_dir() {
    work_dir "$1"
    TEXT=$WORK_DIR/text ENCODED=$WORK_DIR/encoded DATA=$WORK_DIR/data-bin
    SMALL=${SMALL:-0}
    SPM_VOCAB=${SPM_VOCAB:-$([[ $SMALL == 1 ]] && echo 1000 || echo 32000)}
}

# prepared_work_dir DEFAULT (train.sh, evaluate.sh): WORK_DIR (absolute) and DATA of a finished prepare.sh.
prepared_work_dir() {
    WORK_DIR=$(cd "${WORK_DIR:-$1}" 2>/dev/null && pwd) || die "WORK_DIR ${WORK_DIR:-$1} not found; run prepare.sh first"
    DATA=$WORK_DIR/data-bin
    [[ -e "$WORK_DIR/.done/preprocess" ]] || die "no binarized data in $DATA; run prepare.sh first"
    SMALL=${SMALL:-0}
}

# sentencepiece_steps SIDE_A SIDE_B SPLIT...: one joint model of SPM_VOCAB pieces on
# $TEXT/train.SIDE_A and train.SIDE_B (step "sentencepiece"), then every $TEXT/SPLIT.SIDE encoded
# into $ENCODED (step "encode").
sentencepiece_steps() {
    local side_a=$1 side_b=$2 split side; shift 2
    if ! step_done sentencepiece; then
        mkdir -p "$WORK_DIR/spm"
        python "$TEXT_TOOLS" spm-train "$WORK_DIR/spm/spm" "$SPM_VOCAB" "$TEXT/train.$side_a" "$TEXT/train.$side_b"
        mark_done sentencepiece
    fi
    if ! step_done encode; then
        mkdir -p "$ENCODED"
        for split in "$@"; do
            for side in "$side_a" "$side_b"; do
                python "$TEXT_TOOLS" spm-encode "$WORK_DIR/spm/spm.model" "$TEXT/$split.$side" "$ENCODED/$split.$side"
            done
        done
        mark_done encode
    fi
}

# binarize SOURCE TARGET TESTPREF: fairseq-preprocess of $ENCODED into a fresh $DATA, joined dictionary.
binarize() {
    rm -rf "$DATA"
    fairseq-preprocess --source-lang "$1" --target-lang "$2" --joined-dictionary --workers "${WORKERS:-8}" \
        --trainpref "$ENCODED/train" --validpref "$ENCODED/valid" --testpref "$3" --destdir "$DATA" \
        > "$WORK_DIR/preprocess.log" 2>&1 || { tail -20 "$WORK_DIR/preprocess.log" >&2; die "fairseq-preprocess failed (log above)"; }
}

# Dims of the SMALL=1 runs: the same scripts and code paths at CPU size (fairseq takes the last
# flag, so these override a preset's).
SMALL_TRANSFORMER=(--encoder-layers 2 --decoder-layers 2 --encoder-embed-dim 128 --decoder-embed-dim 128
                   --encoder-ffn-embed-dim 256 --decoder-ffn-embed-dim 256 --encoder-attention-heads 4
                   --decoder-attention-heads 4)

# train_seq2seq DESCRIPTION [FAIRSEQ_ARGS...]: the papers' shared recipe (Adam (0.9, 0.98), inverse_sqrt
# from 1e-7, label smoothing 0.1, shared embeddings) for the model in MODEL, into
# $WORK_DIR/checkpoints/$(seeded_run $EXPERIMENT). Reads LR WARMUP DROPOUT MAX_TOKENS TOKENS_PER_UPDATE MAX_UPDATE
# SAVE_EVERY SMALL; on GPUs --update-freq makes each update reach TOKENS_PER_UPDATE, printed first.
# Several GPUs train data-parallel through torchrun, one process per GPU; NNODES machines (each
# started with its NODE_RANK, the same MASTER_ADDR and MASTER_PORT) multiply the GPU count.
# DRY_RUN=1 prints the fairseq-train command instead of running it (with GPUS=N: the full-size command).
train_seq2seq() {
    local description=$1 gpus extra freq; shift
    if [[ $SMALL == 1 ]]; then
        gpus=0 extra=(--cpu --num-workers 0)
    else
        gpus=$(gpu_count) extra=(--fp16 --num-workers 4)
        (( gpus > 0 )) || die "no GPU found (nvidia-smi); set GPUS=N, or SMALL=1 for the CPU-sized run"
    fi
    local nodes=${NNODES:-1} launcher=(fairseq-train)
    (( gpus * nodes > 1 )) && launcher=(torchrun --nnodes "$nodes" --node_rank "${NODE_RANK:-0}" --nproc_per_node "$gpus"
        --master_addr "${MASTER_ADDR:-localhost}" --master_port "${MASTER_PORT:-29500}" "$(command -v fairseq-train || echo fairseq-train)")
    freq=$(update_freq "$TOKENS_PER_UPDATE" "$MAX_TOKENS" "$(( gpus * nodes ))")
    say "$description: $(( gpus > 0 ? gpus * nodes : 1 )) device(s) x --max-tokens $MAX_TOKENS x --update-freq $freq" \
        "= $(( MAX_TOKENS * (gpus > 0 ? gpus * nodes : 1) * freq )) tokens per update (target $TOKENS_PER_UPDATE), $MAX_UPDATE updates"
    SAVE_DIR=$WORK_DIR/checkpoints/$(seeded_run "$EXPERIMENT")
    local command=("${launcher[@]}" "$DATA" --user-dir "$(fairseq-plugins-dir)" "${MODEL[@]}" --share-all-embeddings
        --optimizer adam --adam-betas "(0.9, 0.98)" --lr "$LR" --lr-scheduler inverse_sqrt --warmup-updates "$WARMUP"
        --warmup-init-lr 1e-07 --dropout "$DROPOUT" --criterion label_smoothed_cross_entropy --label-smoothing 0.1
        --max-tokens "$MAX_TOKENS" --update-freq "$freq" --max-update "$MAX_UPDATE"
        --save-dir "$SAVE_DIR" --save-interval-updates "$SAVE_EVERY" --keep-interval-updates 10 --no-epoch-checkpoints
        --seed "${SEED:-1}" --log-format simple --log-interval "$(( SMALL == 1 ? 50 : 100 ))" --no-progress-bar
        "${extra[@]}" "$@")
    if [[ ${DRY_RUN:-0} == 1 ]]; then echo "${command[*]}"; return 0; fi
    mkdir -p "$SAVE_DIR"
    "${command[@]}" 2>&1 | tee -a "$SAVE_DIR/train.log"
    trained "$SAVE_DIR/train.log"
}

# averaged_checkpoints RUN (evaluate.sh): SAVE_DIR, OUT, LENGTH_CAP and AVERAGED, the average
# of the last CHECKPOINTS (default 10) checkpoints of run RUN ($(seeded_run EXPERIMENT) of train.sh).
averaged_checkpoints() {
    SAVE_DIR=$WORK_DIR/checkpoints/$1 OUT=$WORK_DIR/results
    [[ -d "$SAVE_DIR" ]] || die "no checkpoints in $SAVE_DIR; run train.sh $1 first"
    # SMALL=1 caps the output length (max 1.5 x source + 10 tokens): a barely trained model can
    # otherwise loop to fairseq's default 200 tokens, which only costs CI time.
    LENGTH_CAP=(); [[ $SMALL == 1 ]] && LENGTH_CAP=(--max-len-a 1.5 --max-len-b 10)
    AVERAGED=$SAVE_DIR/averaged.pt
    fairseq-plugins-average --inputs "$SAVE_DIR" --num-update-checkpoints "${CHECKPOINTS:-10}" --output "$AVERAGED"
}
