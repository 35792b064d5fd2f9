"""``fairseq-plugins-dip-evaluate``: DIP accuracy as a function of S, beside other checkpoints' accuracy.

    fairseq-plugins-dip-evaluate DATA --dip dip1.pt dip2.pt dip3.pt \\
        --baseline erm=erm1.pt,erm2.pt,erm3.pt --baseline mixup_a0.2=mix1.pt,mix2.pt,mix3.pt \\
        --dip-eval-samples 1,4,16,64 --subset test [--json] [--plot acc_vs_s.png]

``DATA`` is the data the checkpoints were trained on (their task, e.g. ``image_classification``
or ``sentence_prediction``, comes from the checkpoint). Each ``--dip`` checkpoint (trained with
``--criterion dip_cross_entropy``; its reference pool is in the checkpoint) is evaluated with its
own criterion for every S, exactly as ``fairseq-validate ... --criterion dip_cross_entropy
--dip-eval-samples S`` does, and also on clean inputs (no mixing). Each ``--baseline`` checkpoint
(ERM, mixup, ...) is evaluated on clean inputs: the argmax of the model's output. Several
checkpoints of one method (e.g. seeds) are summarised as mean +- sample standard deviation.
``--json`` prints every number and nothing else to stdout (``--json-file FILE`` writes it to FILE
and prints the table).
"""

import argparse
import json
import logging
import sys

import numpy as np
import torch

import fairseq_plugins  # noqa: F401  (fills fairseq's registries)
from fairseq_plugins.cli.checkpoints import batches_in_index_order, classifier_logits, load_checkpoint, load_split
from fairseq_plugins.cli.plotting import check_plot_argument, save_png
from fairseq_plugins.errors import ConfigError

logger = logging.getLogger("fairseq_plugins.dip_evaluate")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="fairseq-plugins-dip-evaluate", description=__doc__.split("\n\n")[0])
    parser.usage = argparse.SUPPRESS  # an error is one line, `prog: error: msg`
    parser.add_argument("data", help="the data directory the checkpoints were trained on")
    parser.add_argument("--dip", nargs="+", default=[], metavar="CKPT", help="checkpoints trained with dip_cross_entropy")
    parser.add_argument("--baseline", action="append", default=[], metavar="NAME=CKPT[,CKPT...]",
                        help="other checkpoints, evaluated on clean inputs (repeatable)")
    parser.add_argument("--dip-eval-samples", default="1,4,16,64", metavar="S[,S...]",
                        help="numbers of mixes averaged per example (default 1,4,16,64)")
    parser.add_argument("--subset", default="test", help="split to evaluate (default test)")
    parser.add_argument("--batch-size", type=int, default=250, help="examples per batch (default 250)")
    parser.add_argument("--json", action="store_true", help="print only the JSON results to stdout")
    parser.add_argument("--json-file", metavar="FILE", help="also write the JSON results to FILE")
    parser.add_argument("--plot", metavar="FILE.png", help="also save accuracy versus S")
    args = parser.parse_args(argv)
    try:
        args.samples = [int(s) for s in args.dip_eval_samples.split(",")]
    except ValueError:
        args.samples = [0]
    if any(s < 1 for s in args.samples):
        parser.error(f"--dip-eval-samples {args.dip_eval_samples}: give integers >= 1 separated by commas, e.g. 1,4,16,64")
    if args.batch_size < 1:
        parser.error(f"--batch-size must be at least 1, got {args.batch_size}")
    if not args.dip and not args.baseline:
        parser.error("nothing to evaluate: give --dip CKPT... and/or --baseline NAME=CKPT[,CKPT...]")
    baselines = {}
    for spec in args.baseline:
        name, _, paths = spec.partition("=")
        if not name or not paths:
            parser.error(f"--baseline {spec}: write NAME=CKPT[,CKPT...], e.g. erm=erm_seed1.pt,erm_seed2.pt")
        baselines[name] = paths.split(",")
    args.baselines = baselines
    check_plot_argument(parser, args.plot)
    return args


def load(path, data, subset, flag):
    model, cfg, task = load_checkpoint(path, data=data, flag=flag)
    return model, cfg, task, load_split(task, cfg, subset)


@torch.no_grad()
def clean_accuracy(model, dataset, batch_size):
    correct = 0
    for batch in batches_in_index_order(dataset, batch_size):
        logits = classifier_logits(model, batch["net_input"])
        correct += (logits.argmax(-1) == batch["target"].view(-1)).sum().item()
    return 100.0 * correct / len(dataset)


@torch.no_grad()
def criterion_accuracy(criterion, model, dataset, batch_size):
    correct = examples = 0
    for batch in batches_in_index_order(dataset, batch_size):
        _, _, logging_output = criterion(model, batch)
        correct += logging_output["ncorrect"]
        examples += logging_output["nexamples"]
    return 100.0 * correct / examples


def summary(values):
    return {"mean": float(np.mean(values)), "std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
            "values": values}


def evaluate(args):
    results = {"subset": args.subset, "dip": {}, "baselines": {}}
    if args.dip:
        per_s = {s: [] for s in args.samples}
        clean = []
        for path in args.dip:
            model, cfg, task, dataset = load(path, args.data, args.subset, "--dip")
            if cfg.criterion._name != "dip_cross_entropy":
                raise ConfigError(
                    f"--dip {path}: trained with --criterion {cfg.criterion._name}, not dip_cross_entropy; "
                    f"evaluate it with --baseline NAME={path}"
                )
            results["examples"] = len(dataset)
            for s in args.samples:
                cfg.criterion.dip_eval_samples = s
                per_s[s].append(criterion_accuracy(task.build_criterion(cfg.criterion), model, dataset, args.batch_size))
                logger.info("%s S=%d: %.2f", path, s, per_s[s][-1])
            clean.append(clean_accuracy(model, dataset, args.batch_size))
        results["dip"] = {"checkpoints": args.dip, "samples": {str(s): summary(v) for s, v in per_s.items()},
                          "clean": summary(clean)}
    for name, paths in args.baselines.items():
        accuracies = []
        for path in paths:
            model, _, _, dataset = load(path, args.data, args.subset, "--baseline")
            results["examples"] = len(dataset)
            accuracies.append(clean_accuracy(model, dataset, args.batch_size))
        results["baselines"][name] = {"checkpoints": paths, **summary(accuracies)}
    return results


def table(results):
    rows = [("method", "checkpoints", f"{results['subset']} accuracy (%)")]
    for name, result in results["baselines"].items():
        rows.append((name, str(len(result["checkpoints"])), f"{result['mean']:.2f} ± {result['std']:.2f}"))
    if results["dip"]:
        count = str(len(results["dip"]["checkpoints"]))
        clean = results["dip"]["clean"]
        rows.append(("dip, clean input", count, f"{clean['mean']:.2f} ± {clean['std']:.2f}"))
        for s, result in results["dip"]["samples"].items():
            rows.append((f"dip, S={s}", count, f"{result['mean']:.2f} ± {result['std']:.2f}"))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows)


def plot(results, path):
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    def draw(axes):
        dip = results["dip"]
        if dip:
            samples = [int(s) for s in dip["samples"]]
            axes.errorbar(samples, [dip["samples"][str(s)]["mean"] for s in samples], color="C0",
                          yerr=[dip["samples"][str(s)]["std"] for s in samples], marker="o", capsize=3, label="DIP")
            axes.set_xscale("log", base=2)
            axes.set_xticks(samples, [str(s) for s in samples])
        for index, (name, result) in enumerate(results["baselines"].items(), start=1):
            color = f"C{index}"  # C0 is DIP's
            axes.axhline(result["mean"], linestyle="--", color=color, label=f"{name} (clean input)")
            axes.axhspan(result["mean"] - result["std"], result["mean"] + result["std"], color=color, alpha=0.15)
        axes.set_xlabel("S (mixes averaged per example)")
        axes.set_ylabel(f"{results['subset']} accuracy (%), mean ± std over checkpoints")
        axes.legend()

    save_png(path, draw)


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.json else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s | %(levelname)s | %(name)s | %(message)s")
    results = evaluate(args)
    if args.plot:
        plot(results, args.plot)
    if args.json_file:
        with open(args.json_file, "w") as file:
            json.dump(results, file, indent=1)
    print(json.dumps(results, indent=1) if args.json else table(results))


if __name__ == "__main__":
    main()
