"""Markdown tables of the study from RESULTS_DIR (precision.json, accuracy.tsv): ``python report.py RESULTS_DIR``.
Writes RESULTS_DIR/results.md and prints it."""

import collections
import json
import os
import statistics
import sys


def main():
    results = sys.argv[1]
    with open(os.path.join(results, "precision.json")) as file:
        precision = json.load(file)
    lines = [f"Precision@k of flipped labels ({precision['flipped']} of {precision['train']} training labels flipped):", "",
             "| ranking | " + " | ".join(f"@{k}" for k in precision["k"]) + " |",
             "|---|" + "---|" * len(precision["k"])]
    for name, row in precision["precision"].items():
        lines.append(f"| {name} | " + " | ".join(f"{row[str(k)]:.3f}" for k in precision["k"]) + " |")
    accuracy = collections.defaultdict(list)
    with open(os.path.join(results, "accuracy.tsv")) as file:
        for line in file:
            run, value = line.split()
            accuracy[run.rsplit(".", 1)[0]].append(float(value))
    removed = round(0.1 * precision["train"])
    lines += ["", f"Test accuracy (%) after removing {removed} training instances and retraining (mean over seeds, then each seed):", "",
              "| training set | mean | seeds |", "|---|---|---|"]
    for name, values in accuracy.items():
        lines.append(f"| {name} | {statistics.mean(values):.2f} | {' '.join(f'{v:.2f}' for v in values)} |")
    text = "\n".join(lines) + "\n"
    with open(os.path.join(results, "results.md"), "w") as file:
        file.write(text)
    print(text)


if __name__ == "__main__":
    main()
