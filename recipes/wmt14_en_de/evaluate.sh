#!/usr/bin/env bash
# evaluate.sh EXPERIMENT: average the last 10 checkpoints, translate every test set with beam 4 and
# length penalty 0.6, detokenize (sentencepiece decoding of the raw-text model), score detokenized
# output with sacrebleu against the untouched references, print each score with its signature, and
# write results/EXPERIMENT.{tsv,json}: BLEU on newstest2014 and, when all of newstest2010-2016 are
# there, each year's and their average (the B2T paper's number).
# Environment: WORK_DIR (as prepare.sh), CHECKPOINTS=N checkpoints to average (default 10), SEED=S
# (evaluate the run EXPERIMENT-seedS that train.sh wrote with the same SEED).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib.sh"
[[ $# -ge 1 ]] || die "which experiment? (the name given to train.sh)"
EXPERIMENT=$(seeded_run "$1")  # EXPERIMENT-seedS when SEED=S is set, as train.sh names the run
prepared_work_dir wmt14_en_de
need sacrebleu "pip install sacrebleu"
averaged_checkpoints "$EXPERIMENT"
mkdir -p "$OUT/$EXPERIMENT"

index=0
while read -r test_set; do
    split=test$([[ $index -gt 0 ]] && echo $index || true)
    generated=$OUT/$EXPERIMENT/$test_set.generate.txt hypotheses=$OUT/$EXPERIMENT/$test_set.de
    fairseq-generate "$DATA" --user-dir "$(fairseq-plugins-dir)" --path "$AVERAGED" --gen-subset "$split" \
        --beam 4 --lenpen 0.6 --max-tokens 8000 "${LENGTH_CAP[@]}" --required-batch-size-multiple 1 --post-process sentencepiece \
        > "$generated" 2> "$generated.log" || { tail -20 "$generated.log" >&2; die "fairseq-generate failed on $test_set"; }
    grep '^H-' "$generated" | sed 's/^H-//' | sort -n -k1,1 | cut -f3 > "$hypotheses"
    references=$WORK_DIR/text/$test_set.de
    [[ $(wc -l < "$hypotheses") == $(wc -l < "$references") ]] \
        || die "$test_set: $(wc -l < "$hypotheses") translations for $(wc -l < "$references") references"
    sacrebleu "$references" -i "$hypotheses" -m bleu > "$OUT/$EXPERIMENT/$test_set.bleu.json"
    index=$((index + 1))
done < "$DATA/test_sets.txt"

python - "$EXPERIMENT" "$OUT" "$DATA/test_sets.txt" "$AVERAGED" <<'PY'
import json, sys
experiment, out, test_sets, checkpoint = sys.argv[1:]
scores = {}
for name in open(test_sets).read().split():
    scores[name] = json.load(open(f"{out}/{experiment}/{name}.bleu.json"))
row = {"experiment": experiment, "checkpoint": checkpoint}
row.update({name: score["score"] for name, score in scores.items()})
years = [f"newstest{y}" for y in range(2010, 2017)]
row["avg2010-2016"] = round(sum(row[y] for y in years) / len(years), 2) if all(y in row for y in years) else None
row["signature"] = next(iter(scores.values()))["signature"]
for name, score in scores.items():
    print(f"{experiment}\t{name}\tBLEU = {score['score']:.2f}\t{score['verbose_score']}\tsignature: {score['signature']}")
if row["avg2010-2016"] is not None:
    print(f"{experiment}\taverage newstest2010-2016\tBLEU = {row['avg2010-2016']:.2f}")
columns = list(row)
with open(f"{out}/{experiment}.tsv", "w") as tsv:
    tsv.write("\t".join(columns) + "\n" + "\t".join("" if row[c] is None else str(row[c]) for c in columns) + "\n")
with open(f"{out}/{experiment}.json", "w") as f:
    json.dump(row, f, indent=1)
print(f"results: {out}/{experiment}.tsv and .json")
PY
