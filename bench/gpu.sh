#!/usr/bin/env bash
# bench/gpu.sh [OUT.json]: training target tokens/s (fairseq-train), peak GPU memory and decoding
# sentences/s (fairseq-generate, beam 4) of
#
#   transformer, b2t_transformer (6 and 18 layers), shape_transformer, alone_transformer_wmt_en_de
#
# at Transformer-base size (d=512, ffn 2048, 8 heads), --fp16, on one GPU, in one go; writes one JSON
# (default bench/results/gpu.json) and prints it.
#
# Data: the toy corpus (fairseq_plugins/synthetic_translation.py) over a joined dictionary padded with
# unused words to VOCAB (default 32000, recipes/wmt14_en_de's joined vocabulary), so that the output
# projection and ALONE's V x d matrix cost what they cost on WMT.
# Training: the recipe's per-GPU batch (--max-tokens 7200) and optimizer (recipes/wmt14_en_de/train.sh;
# its --update-freq, 64 on one GPU, only spreads an update over more batches: UPDATE_FREQ, default 1),
# for UPDATES updates (default 200) from scratch. tokens/s: fairseq's wps (target tokens/s) of each
# log interval, median over the intervals after the first (warm-up). Peak memory: fairseq's own
# per-update peak (torch.cuda.max_memory_allocated, logged as gb_free = total - peak), its maximum.
# Decoding: the last checkpoint on the test split (SENTENCES sentences, batch 128); every hypothesis is
# exactly LENGTH tokens (--min-len = --max-len-b, --max-len-a 0), so all models do the same work
# however little they learned; fairseq-generate's own sentences/s (generation only, not loading).
#
#   bash bench/gpu.sh                          # one GPU: estimated 5-6 minutes on an H200 (not yet run)
#   TINY=1 bash bench/gpu.sh /tmp/tiny.json    # CPU, 1 and 3 layers at d=64: about 2 minutes on 2 cores
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${1:-$HERE/results/gpu.json}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

if [[ ${TINY:-0} == 1 ]]; then
    DEVICE=(--cpu --num-workers 0) LAYERS=1 DEEP_LAYERS=3 VOCAB=${VOCAB:-1000} UPDATES=${UPDATES:-6} LOG_INTERVAL=2
    TRAIN_SENTENCES=2000 SENTENCES=${SENTENCES:-40} LENGTH=${LENGTH:-8} MAX_TOKENS=${MAX_TOKENS:-1024}
    # fairseq takes the last flag, so these override the presets' dims.
    SIZE=(--encoder-embed-dim 64 --decoder-embed-dim 64 --encoder-ffn-embed-dim 128 --decoder-ffn-embed-dim 128
          --encoder-attention-heads 2 --decoder-attention-heads 2)
    ALONE_SIZE=(--alone-inter-dim 256)
else
    DEVICE=(--fp16 --num-workers 4) LAYERS=6 DEEP_LAYERS=18 VOCAB=${VOCAB:-32000} UPDATES=${UPDATES:-200} LOG_INTERVAL=20
    TRAIN_SENTENCES=20000 SENTENCES=${SENTENCES:-2000} LENGTH=${LENGTH:-30} MAX_TOKENS=${MAX_TOKENS:-7200}
    SIZE=() ALONE_SIZE=()
fi
ARCHS=(transformer b2t_transformer_6l b2t_transformer_18l shape_transformer alone_transformer_wmt_en_de)
USER_DIR=$(fairseq-plugins-dir)
export TINY=${TINY:-0} LAYERS DEEP_LAYERS VOCAB UPDATES LOG_INTERVAL MAX_TOKENS UPDATE_FREQ=${UPDATE_FREQ:-1} SENTENCES LENGTH

model_flags() {  # model_flags NAME: the preset and the recipe's settings of NAME (recipes/wmt14_en_de/train.sh)
    case $1 in
        transformer)         MODEL=(--arch transformer --dropout 0.3) ;;
        b2t_transformer_6l)  MODEL=(--arch b2t_transformer --dropout 0.3) ;;
        b2t_transformer_18l) MODEL=(--arch b2t_transformer --dropout 0.35) ;;
        shape_transformer)   MODEL=(--arch shape_transformer --dropout 0.3) ;;
        alone_transformer_wmt_en_de)
            MODEL=(--arch alone_transformer_wmt_en_de --dropout 0.2 --alone-relu-dropout 0.15
                   --alone-relu-dropout-off-after 4500 --clip-norm 1.0 "${ALONE_SIZE[@]}") ;;
    esac
    local layers=$LAYERS
    [[ $1 == *_18l ]] && layers=$DEEP_LAYERS
    MODEL+=(--encoder-layers "$layers" --decoder-layers "$layers" "${SIZE[@]}")
}

fairseq_generate() {  # fairseq-generate, torch's lazy sympy import kept out of its timer (bench/alone_inference.py)
    python -c 'import runpy, torch.fx.experimental.symbolic_shapes; runpy.run_module("fairseq_cli.generate", run_name="__main__")' "$@"
}

echo "bench/gpu.sh: toy corpus over V=$VOCAB in $WORK" >&2
DATA=$(PYTHONPATH="$HERE${PYTHONPATH:+:$PYTHONPATH}" python -c '
import sys
from alone_inference import binarized_toy_corpus
print(binarized_toy_corpus(sys.argv[1], *map(int, sys.argv[2:])))' "$WORK" "$VOCAB" "$SENTENCES" "$TRAIN_SENTENCES")

for name in "${ARCHS[@]}"; do
    model_flags "$name"
    echo "bench/gpu.sh: $name: fairseq-train ${MODEL[*]}" >&2
    fairseq-train "$DATA" --user-dir "$USER_DIR" "${MODEL[@]}" --share-all-embeddings "${DEVICE[@]}" \
        --optimizer adam --adam-betas "(0.9, 0.98)" --lr 1e-3 --lr-scheduler inverse_sqrt --warmup-updates 4000 \
        --warmup-init-lr 1e-07 --criterion label_smoothed_cross_entropy --label-smoothing 0.1 \
        --max-tokens "$MAX_TOKENS" --update-freq "$UPDATE_FREQ" --max-update "$UPDATES" --disable-validation \
        --save-dir "$WORK/$name" --save-interval 1000000 --no-epoch-checkpoints --seed 1 \
        --log-format json --log-interval "$LOG_INTERVAL" --no-progress-bar > "$WORK/$name.train.log" 2>&1 \
        || { tail -20 "$WORK/$name.train.log" >&2; exit 1; }
    echo "bench/gpu.sh: $name: fairseq-generate" >&2
    fairseq_generate "$DATA" --user-dir "$USER_DIR" --path "$WORK/$name/checkpoint_last.pt" \
        --gen-subset test --beam 4 --batch-size 128 --max-len-a 0 --max-len-b "$LENGTH" --min-len "$LENGTH" \
        "${DEVICE[@]}" --quiet > "$WORK/$name.generate.log" 2>&1 || { tail -20 "$WORK/$name.generate.log" >&2; exit 1; }
done

mkdir -p "$(dirname "$OUT")"
PYTHONPATH="$HERE${PYTHONPATH:+:$PYTHONPATH}" python - "$WORK" "$OUT" "${ARCHS[@]}" <<'EOF'
import json, os, re, statistics, sys
from alone_inference import SPEED

work, out, names = sys.argv[1], sys.argv[2], sys.argv[3:]
tiny = os.environ["TINY"] == "1"


def train_measures(log):
    """Median wps after the first log interval; peak GiB, total GiB and GPU name (None on CPU)."""
    intervals, gpu, total = [], None, None
    for line in log.splitlines():
        if "| train_inner |" in line:
            intervals.append(json.loads(line.split("| train_inner |", 1)[1]))
        found = re.search(r"total memory = ([\d.]+) GB ; name = (.+?)\s*$", line)
        if found:
            total, gpu = float(found.group(1)), found.group(2)
    free = [float(entry["gb_free"]) for entry in intervals if "gb_free" in entry]
    peak = total - min(free) if free and total else None
    return statistics.median(float(entry["wps"]) for entry in intervals[1:]), peak, gpu


setup = {key.lower(): int(os.environ[key]) for key in
         ("LAYERS", "DEEP_LAYERS", "VOCAB", "UPDATES", "LOG_INTERVAL", "MAX_TOKENS", "UPDATE_FREQ", "SENTENCES", "LENGTH")}
report = {"device": "cpu" if tiny else "cuda", "gpu": None, "setup": {"tiny": tiny, "fp16": not tiny, "beam": 4, **setup},
          "architectures": {}}
for name in names:
    with open(f"{work}/{name}.train.log") as f:
        tokens_per_s, peak, report["gpu"] = train_measures(f.read())
    with open(f"{work}/{name}.generate.log") as f:
        sentences_per_s = float(SPEED.search(f.read()).group(1))
    report["architectures"][name] = {"train_tokens_per_s": tokens_per_s, "peak_gpu_memory_gib": peak,
                                     "generate_sentences_per_s": sentences_per_s}
base = report["architectures"]["transformer"]
report["over_transformer"] = {name: {key: entry[key] / base[key] for key in ("train_tokens_per_s", "generate_sentences_per_s")}
                              for name, entry in report["architectures"].items()}
with open(out, "w") as f:
    json.dump(report, f, indent=1)
print(json.dumps(report, indent=1))
EOF
