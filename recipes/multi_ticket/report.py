"""The multi-ticket recipe's report: results.json and table.md from the ensembles' JSON and the members' wall times.

    python report.py MEMBERS_DIR RESULTS_DIR [--small 0|1]

Per task and method, from ``RESULTS_DIR/ensembles/TASK-METHOD.json`` (fairseq-plugins-ensemble over
every seed group): the paper's protocol (every sub-ensemble of k = 2..min(5, members) members,
averaged over the sizes and the seed groups: single = mean member score, ensemble, diff =
ensemble - single, Q statistic, disagreement, double fault, correlation), beside it the
ensemble of all members of a group (averaged over the groups) and its mask IoU, and the mean
wall time of a member's fairseq-train runs relative to a dense member's, all trained one after
another on the same machine. The paper's BERT-base MRPC numbers stand beside them.
"""

import argparse
import glob
import json
import os
import re

NAMES = {"dense": "BASELINE (dense)", "bagging": "BAGGING", "base": "BASE-LT", "active": "ACTIVE-LT", "random": "RANDOM-LT"}
# Kobayashi et al. (2022), BERT-base, MRPC dev accuracy: single / ensemble
PAPER_MRPC = {"dense": (83.48, 84.34), "bagging": (82.87, 84.19), "base": (83.84, 84.98), "active": (83.22, 84.60),
              "random": (83.53, 85.05)}
PAPER_DIVERSITY = "MRPC: Q 0.96 (dense) -> 0.93-0.94 (tickets), disagreement 0.09 -> 0.10-0.11, correlation 0.69 -> 0.62-0.63"


def member_seconds(members_dir, task, method):
    """Mean wall time of a member's fairseq-train runs, and how many members were timed."""
    times = []
    for path in glob.glob(os.path.join(members_dir, task, f"{method}-seed*", "member-*", "time.json")):
        with open(path) as file:
            times.append(json.load(file)["seconds"])
    return (sum(times) / len(times) if times else None), len(times)


def method_summary(ensemble, seconds, timed, dense_seconds):
    return {"protocol": ensemble["protocol"], "all_members": ensemble["all_members"], "ensemble": ensemble,
            "member_seconds": seconds, "members_timed": timed,
            "time_vs_dense": seconds / dense_seconds if seconds and dense_seconds else None}


def table(results):
    def cell(value, digits=3, sign=""):
        return "n/a" if value is None else f"{value:{sign}.{digits}f}"

    lines = []
    for task, methods in results["tasks"].items():
        some = next(iter(methods.values()))["ensemble"]
        sizes = ",".join(map(str, some["combinations"]))
        lines += [f"### {task}: {some['metric']} on {some['subset']} ({some['examples']} examples)", "",
                  f"Every sub-ensemble of {sizes} members, averaged over the sizes and the seed groups (the paper's "
                  "protocol); beside it the ensemble of all members of a group, averaged over the groups.", "",
                  "| method | members x seed groups | single | ensemble | diff | Q | disagreement | double fault | "
                  "correlation | all members: ensemble / diff | mask IoU | member time / dense | "
                  "paper MRPC (BERT-base) single / ensemble |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for method in [m for m in NAMES if m in methods]:
            row = methods[method]
            protocol, everyone, paper = row["protocol"], row["all_members"], PAPER_MRPC[method]
            lines.append(
                f"| {NAMES[method]} | {row['ensemble']['members_per_group']} x {len(row['ensemble']['seed_groups'])} | "
                f"{cell(protocol['mean_single'], 2)} | {cell(protocol['ensemble'], 2)} | {cell(protocol['diff'], 2, '+')} | "
                f"{cell(protocol['q_statistic'])} | {cell(protocol['disagreement'])} | {cell(protocol['double_fault'])} | "
                f"{cell(protocol['correlation'])} | {cell(everyone['ensemble'], 2)} / {cell(everyone['diff'], 2, '+')} | "
                f"{cell(everyone['mask_iou'])} | {cell(row['time_vs_dense'], 2)} | {paper[0]:.2f} / {paper[1]:.2f} |")
        lines.append("")
    lines.append(f"Paper diversity: {PAPER_DIVERSITY}.")
    return "\n".join(lines) + "\n"


def write(results, results_dir):
    os.makedirs(results_dir, exist_ok=True)
    with open(os.path.join(results_dir, "results.json"), "w") as file:
        json.dump(results, file, indent=1)
    with open(os.path.join(results_dir, "table.md"), "w") as file:
        file.write(table(results))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("members_dir")
    parser.add_argument("results_dir")
    parser.add_argument("--small", default="0")
    args = parser.parse_args()
    found = {}
    for path in sorted(glob.glob(os.path.join(args.results_dir, "ensembles", "*.json"))):
        task, method = re.fullmatch(r"(.+)-([a-z]+)\.json", os.path.basename(path)).groups()
        with open(path) as file:
            found.setdefault(task, {})[method] = json.load(file)
    results = {"small": args.small == "1", "tasks": {}, "paper_mrpc_bert_base": PAPER_MRPC, "paper_diversity": PAPER_DIVERSITY}
    for task, methods in found.items():
        dense_seconds, _ = member_seconds(args.members_dir, task, "dense")
        results["tasks"][task] = {method: method_summary(methods[method], *member_seconds(args.members_dir, task, method),
                                                         dense_seconds)
                                  for method in NAMES if method in methods}
    write(results, args.results_dir)


if __name__ == "__main__":
    main()
