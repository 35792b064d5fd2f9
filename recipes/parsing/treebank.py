"""Data and report steps of the parsing recipe.

    python treebank.py split SOURCE.conllu OUT_DIR [--seed 0]   # 80/10/10 train/valid/test, fixed seed
    python treebank.py check DIR                                 # every split read by the task's reader
    python treebank.py metrics LOG OUT.json                      # fairseq-validate's test line as JSON
    python treebank.py report WORK_DIR OUT.json                  # mean/std over seeds of the evaluations

``split`` keeps each sentence's lines verbatim (comments included) and shuffles whole sentences
with ``numpy.random.default_rng(seed)``, independent of the training seeds.
"""

import argparse
import glob
import json
import os
import re
import sys

import numpy as np

from fairseq_plugins.cli.common import seed_statistics
from fairseq_plugins.cli.fairseq_runs import last_validation
from fairseq_plugins.data.conllu_treebank import read_conllu
from fairseq_plugins.errors import ConfigError

SPLITS = ("train", "valid", "test")
METRICS = ("uas", "las", "uas_punct", "las_punct", "well_formed")


def sentence_blocks(path):
    with open(path, encoding="utf-8") as file:
        return [block.strip("\n") + "\n" for block in re.split(r"\n\s*\n", file.read()) if block.strip()]


def split(source, out_dir, seed):
    read_conllu(source)  # one-line errors for a bad source, before anything is written
    blocks = sentence_blocks(source)
    order = np.random.default_rng(seed).permutation(len(blocks))
    held_out = len(blocks) // 10
    parts = {"test": order[:held_out], "valid": order[held_out:2 * held_out], "train": order[2 * held_out:]}
    os.makedirs(out_dir, exist_ok=True)
    for name, indices in parts.items():
        with open(os.path.join(out_dir, f"{name}.conllu"), "w", encoding="utf-8") as file:
            file.write("\n".join(blocks[i] for i in sorted(indices)) + "\n")
    print(" ".join(f"{name} {len(parts[name])}" for name in SPLITS))


def check(directory):
    counts = {name: read_conllu(os.path.join(directory, f"{name}.conllu")) for name in SPLITS}
    print(" ".join(f"{name} {len(sentences)} sentences / {sum(len(s.heads) for s in sentences)} words"
                   for name, sentences in counts.items()))


def metrics(log, out):
    with open(log, encoding="utf-8") as file:
        validation = last_validation(file.read(), "test", source=log)
    scores = {name: validation[name] for name in METRICS if name in validation}
    with open(out, "w", encoding="utf-8") as file:
        json.dump(scores, file)


def report(work_dir, out):
    """Aggregate ``WORK_DIR/eval/METHOD-seedS.{all,no_ig}.json`` and ``.explain.json`` files."""
    runs = {}
    for path in sorted(glob.glob(os.path.join(work_dir, "eval", "*-seed*.json"))):
        name = os.path.basename(path)
        method, rest = name.split("-seed", 1)
        seed, kind = rest.split(".", 1)
        runs.setdefault(method, {}).setdefault(kind[:-len(".json")], {})[int(seed)] = json.load(open(path))
    if not runs:
        raise ConfigError(f"no evaluations in {work_dir}/eval; run evaluate.sh first")
    table = {}
    for method, kinds in runs.items():
        row = {}
        for kind in ("all", "no_ig"):
            if kind in kinds:
                row[kind] = {metric: seed_statistics({seed: scores[metric] for seed, scores in kinds[kind].items()}, 2)
                             for metric in METRICS}
        if "explain" in kinds:
            for field in ("plausibility", "label_prior"):
                row[field] = seed_statistics({seed: summary[field] for seed, summary in kinds["explain"].items()}, 2)
        row["seeds"] = sorted(next(iter(kinds.values())))
        table[method] = row
    with open(out, "w", encoding="utf-8") as file:
        json.dump(table, file, indent=1)
    for method, row in table.items():
        scores = " ".join(f"{kind}: UAS {row[kind]['uas']['mean']:.2f}+-{row[kind]['uas']['std'] or 0:.2f} "
                          f"LAS {row[kind]['las']['mean']:.2f}+-{row[kind]['las']['std'] or 0:.2f}"
                          for kind in ("all", "no_ig") if kind in row)
        extra = (f" plausibility {row['plausibility']['mean']:.2f} (label prior {row['label_prior']['mean']:.2f})"
                 if "plausibility" in row else "")
        print(f"{method}: {scores}{extra}")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="treebank.py")
    commands = parser.add_subparsers(dest="command", required=True)
    command = commands.add_parser("split")
    command.add_argument("source")
    command.add_argument("out_dir")
    command.add_argument("--seed", type=int, default=0)
    commands.add_parser("check").add_argument("directory")
    command = commands.add_parser("metrics")
    command.add_argument("log")
    command.add_argument("out")
    command = commands.add_parser("report")
    command.add_argument("work_dir")
    command.add_argument("out")
    args = parser.parse_args(argv)
    try:
        if args.command == "split":
            split(args.source, args.out_dir, args.seed)
        elif args.command == "check":
            check(args.directory)
        elif args.command == "metrics":
            metrics(args.log, args.out)
        else:
            report(args.work_dir, args.out)
    except ConfigError as error:
        sys.exit(f"treebank.py: error: {error}")


if __name__ == "__main__":
    main()
