"""The multi-ticket recipe's report: results.json and table.md from the ensembles' JSON and the members' wall times.

    python report.py MEMBERS_DIR RESULTS_DIR [--small 0|1]

Per task and method: the ensemble of all members of a seed group (single = mean member score,
ensemble, diff = ensemble - single, Q statistic, disagreement, double fault, correlation, mask
IoU), averaged over the seed groups; every ``combinations`` size likewise; and the mean wall time
of a member's fairseq-train runs relative to a dense member's, all trained one after another on
the same machine. The paper's BERT-base MRPC numbers stand beside them.
"""

import argparse
import glob
import json
import os
import re

MEASURES = ("mean_single", "ensemble", "diff", "q_statistic", "disagreement", "double_fault", "correlation", "mask_iou")
NAMES = {"dense": "BASELINE (dense)", "bagging": "BAGGING", "base": "BASE-LT", "active": "ACTIVE-LT", "random": "RANDOM-LT"}
# Kobayashi et al. (2022), BERT-base, MRPC dev accuracy: single / ensemble
PAPER_MRPC = {"dense": (83.48, 84.34), "bagging": (82.87, 84.19), "base": (83.84, 84.98), "active": (83.22, 84.60),
              "random": (83.53, 85.05)}
PAPER_DIVERSITY = "MRPC: Q 0.96 (dense) -> 0.93-0.94 (tickets), disagreement 0.09 -> 0.10-0.11, correlation 0.69 -> 0.62-0.63"


def mean(values):
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def member_seconds(members_dir, task, method):
    times = []
    for path in glob.glob(os.path.join(members_dir, task, f"{method}-seed*", "member-*", "time.json")):
        with open(path) as file:
            times.append(json.load(file)["seconds"])
    return mean(times), len(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("members_dir")
    parser.add_argument("results_dir")
    parser.add_argument("--small", default="0")
    args = parser.parse_args()
    found = {}
    for path in sorted(glob.glob(os.path.join(args.results_dir, "ensembles", "*.json"))):
        task, method, seed = re.fullmatch(r"(.+)-([a-z]+)-seed(\d+)\.json", os.path.basename(path)).groups()
        with open(path) as file:
            found.setdefault(task, {}).setdefault(method, {})[seed] = json.load(file)
    results = {"small": args.small == "1", "tasks": {}, "paper_mrpc_bert_base": PAPER_MRPC, "paper_diversity": PAPER_DIVERSITY}
    lines = []
    for task, methods in found.items():
        dense_seconds, _ = member_seconds(args.members_dir, task, "dense")
        results["tasks"][task] = {}
        some = next(iter(next(iter(methods.values())).values()))
        lines += [f"### {task}: {some['metric']} on {some['subset']} ({some['examples']} examples)", "",
                  "| method | members x seed groups | single | ensemble | diff | Q | disagreement | double fault | "
                  "correlation | mask IoU | member time / dense | paper MRPC (BERT-base) single / ensemble |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for method in [m for m in NAMES if m in methods]:
            groups = methods[method]
            summary = {key: mean([g[key] for g in groups.values()]) for key in MEASURES}
            sizes = sorted({k for g in groups.values() for k in g.get("combinations", {})}, key=int)
            combinations = {k: {key: mean([g["combinations"][k][key] for g in groups.values() if k in g.get("combinations", {})])
                                for key in MEASURES if key != "mask_iou"} for k in sizes}
            seconds, timed = member_seconds(args.members_dir, task, method)
            ratio = seconds / dense_seconds if seconds and dense_seconds else None
            members = len(next(iter(groups.values()))["members"])
            results["tasks"][task][method] = {"seed_groups": groups, "mean": summary, "combinations": combinations,
                                              "member_seconds": seconds, "members_timed": timed, "time_vs_dense": ratio}

            def cell(key, digits=3):
                return "n/a" if summary[key] is None else f"{summary[key]:.{digits}f}"
            paper = PAPER_MRPC[method]
            lines.append(f"| {NAMES[method]} | {members} x {len(groups)} | {cell('mean_single', 2)} | {cell('ensemble', 2)} | "
                         f"{summary['diff']:+.2f} | {cell('q_statistic')} | {cell('disagreement')} | {cell('double_fault')} | "
                         f"{cell('correlation')} | {cell('mask_iou')} | {'n/a' if ratio is None else f'{ratio:.2f}'} | "
                         f"{paper[0]:.2f} / {paper[1]:.2f} |")
        lines.append("")
    lines.append(f"Paper diversity: {PAPER_DIVERSITY}.")
    os.makedirs(args.results_dir, exist_ok=True)
    with open(os.path.join(args.results_dir, "results.json"), "w") as file:
        json.dump(results, file, indent=1)
    with open(os.path.join(args.results_dir, "table.md"), "w") as file:
        file.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
