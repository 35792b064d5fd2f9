#!/usr/bin/env bash
# compare.sh EXPERIMENT...: train.sh and evaluate.sh of each experiment once per seed of SEEDS (default
# "1 2 3", the same budget for all), then one table: the model's embedding and other parameters, and
# newstest2014 BLEU mean, sample std and per seed. Printed, and written to results/compare.{tsv,json}.
#   SMALL=1 bash recipes/wmt14_en_de/compare.sh standard alone-binary alone-real   # ALONE's claim, CPU size
# Runs are named EXPERIMENT-seedS (checkpoints/, results/); a run whose results/EXPERIMENT-seedS.json
# exists is not trained again. Environment as train.sh and evaluate.sh; prepare.sh must have run.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib.sh"
(( $# )) || die "which experiments? e.g. compare.sh standard alone-binary alone-real"
SEEDS=${SEEDS:-1 2 3}
for seed in $SEEDS; do [[ $seed =~ ^[0-9]+$ ]] || die "SEEDS must be integers separated by spaces (got '$SEEDS')"; done
prepared_work_dir wmt14_en_de
for experiment in "$@"; do
    for seed in $SEEDS; do
        if [[ -s "$WORK_DIR/results/$(seeded_run "$experiment" "$seed").json" ]]; then
            say "skip $experiment seed $seed (results exist)"; continue
        fi
        SEED=$seed bash "$HERE/train.sh" "$experiment"
        SEED=$seed bash "$HERE/evaluate.sh" "$experiment"
    done
done

python - "$WORK_DIR" "$SEEDS" "$@" <<'PY'
import json, os, sys

from fairseq_plugins.cli.checkpoints import load_checkpoint
from fairseq_plugins.cli.common import seed_statistics
from fairseq_plugins.cli.params import count_parameters

work, seeds, experiments = sys.argv[1], [int(seed) for seed in sys.argv[2].split()], sys.argv[3:]
rows = {}
for experiment in experiments:
    runs = {seed: json.load(open(f"{work}/results/{experiment}-seed{seed}.json")) for seed in seeds}
    model = load_checkpoint(runs[seeds[0]]["checkpoint"], f"{work}/data-bin")[0]
    rows[experiment] = {"parameters": count_parameters(model),
                        "bleu": seed_statistics({seed: runs[seed]["newstest2014"] for seed in seeds}, digits=2)}
signature = runs[seeds[0]]["signature"]
print(f"newstest2014 BLEU, seeds {' '.join(map(str, seeds))} ({signature})")
print(f"{'experiment':<14} {'embedding':>10} {'rest':>10} {'BLEU mean':>10} {'std':>6}  per seed")
with open(f"{work}/results/compare.tsv", "w") as tsv:
    tsv.write("experiment\tembedding_parameters\tother_parameters\tbleu_mean\tbleu_std\tbleu_by_seed\n")
    for name, row in rows.items():
        bleu = row["bleu"]
        std = "-" if bleu["std"] is None else f"{bleu['std']:.2f}"
        by_seed = " ".join(f"{score:.2f}" for score in bleu["by_seed"].values())
        print(f"{name:<14} {row['parameters']['embedding']:>10,} {row['parameters']['rest']:>10,} "
              f"{bleu['mean']:>10.2f} {std:>6}  {by_seed}")
        tsv.write(f"{name}\t{row['parameters']['embedding']}\t{row['parameters']['rest']}\t{bleu['mean']}\t{std}\t{by_seed}\n")
with open(f"{work}/results/compare.json", "w") as f:
    json.dump({"test_set": "newstest2014", "signature": signature, "seeds": seeds, "experiments": rows}, f, indent=1)
print(f"results: {work}/results/compare.tsv and .json")
PY
