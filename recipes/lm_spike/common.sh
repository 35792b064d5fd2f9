# Settings shared by the lm_spike scripts (sourced).
#   WORK_DIR=DIR  every output under DIR (default ./lm_spike)
#   RAW_DIR=DIR   read plain-text {train,valid,test}.txt from DIR instead of the PTB package
#   SMALL=1       tiny model, first 3000 training lines, a few dozen updates: every step in minutes on a CPU
#   CHARS=1       character-level text (prepare.sh; use its own WORK_DIR)
#   MAX_UPDATE, MAX_TOKENS, WARMUP, LR, HIGH_LR, SPIKE_FACTOR   override the defaults below
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/../lib.sh"
SMALL=${SMALL:-0}
CHARS=${CHARS:-0}
work_dir lm_spike
DATA=$WORK_DIR/data-bin
TREATMENTS=(vanilla scaled layernorm)
if [[ $SMALL == 1 ]]; then
    ARCH=spike_transformer_lm_tiny MAX_UPDATE=${MAX_UPDATE:-30} MAX_TOKENS=${MAX_TOKENS:-1024} WARMUP=${WARMUP:-10} TRAIN_LINES=3000
else
    ARCH=spike_transformer_lm_small MAX_UPDATE=${MAX_UPDATE:-3000} MAX_TOKENS=${MAX_TOKENS:-8192} WARMUP=${WARMUP:-400} TRAIN_LINES=
fi
LR=${LR:-1e-3}              # the comparison's learning rate
HIGH_LR=${HIGH_LR:-1e-2}    # deliberately high: where spikes show
SPIKE_FACTOR=${SPIKE_FACTOR:-1.5}
TOKENS_PER_SAMPLE=128
run_name() { echo "$1-lr$2"; }  # run_name TREATMENT LR
