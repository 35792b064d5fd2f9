# Shell helpers shared by the recipes (sourced by their prepare/train/evaluate scripts).
# Every step writes a "<name>.done" marker when it finishes, so a re-run skips finished steps and an
# interrupted one starts over; downloads resume from their ".part" file.

die() { echo "$(basename "$0"): error: $*" >&2; exit 1; }
say() { echo "[$(basename "$(dirname "$0")")] $*" >&2; }

need() {  # need TOOL HINT: stop with what to do when a tool is missing
    command -v "$1" >/dev/null 2>&1 || die "$1 not found; $2"
}

need_python() {  # need_python MODULE PACKAGE
    python -c "import $1" 2>/dev/null || die "python module $1 not found; pip install $2"
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
