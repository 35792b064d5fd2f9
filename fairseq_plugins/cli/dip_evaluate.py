"""``fairseq-plugins-dip-evaluate``: DIP accuracy as a function of S, beside other checkpoints' accuracy.

    fairseq-plugins-dip-evaluate DATA --dip dip1.pt dip2.pt dip3.pt \\
        --baseline erm=erm1.pt,erm2.pt,erm3.pt --baseline mixup_a0.2=mix1.pt,mix2.pt,mix3.pt \\
        --dip-eval-samples 1,4,16,64 --valid-subset test [--json [FILE]] [--plot acc_vs_s.png]

``DATA`` is the data the checkpoints were trained on (their task, e.g. ``image_classification``
or ``sentence_prediction``, comes from the checkpoint). Each ``--dip`` checkpoint (trained with
``--criterion dip_cross_entropy``; its reference pool is in the checkpoint) is evaluated with its
own criterion for every S, exactly as ``fairseq-validate ... --criterion dip_cross_entropy
--dip-eval-samples S`` does, and also on clean inputs (no mixing). Each ``--baseline`` checkpoint
(ERM, mixup, ...) is evaluated on clean inputs: the argmax of the model's output. Several
checkpoints of one method, one per training seed, are summarised as mean +- sample standard
deviation over the seeds (``{"mean", "std", "by_seed"}``, keyed by the seed each was trained with).
``--json`` prints every number and nothing else to stdout (``--json FILE`` writes it to FILE and
prints the table).
"""

import logging

import torch

import fairseq_plugins  # noqa: F401  (fills fairseq's registries)
from fairseq_plugins.cli.checkpoints import batches_in_index_order, classifier_logits, load_checkpoint, load_split
from fairseq_plugins.cli.common import (
    add_json_output, add_user_dir, command_parser, import_user_dir, prints_json, seed_statistics, setup_logging,
    write_results,
)
from fairseq_plugins.cli.plotting import check_plot_argument, save_png
from fairseq_plugins.errors import ConfigError
from fairseq_plugins.options import bounded

logger = logging.getLogger("fairseq_plugins.dip_evaluate")


def parse_args(argv=None):
    parser = command_parser("fairseq-plugins-dip-evaluate", __doc__)
    parser.add_argument("data", help="the data directory the checkpoints were trained on")
    parser.add_argument("--dip", nargs="+", default=[], metavar="CKPT", help="checkpoints trained with dip_cross_entropy")
    parser.add_argument("--baseline", action="append", default=[], metavar="NAME=CKPT[,CKPT...]",
                        help="other checkpoints, evaluated on clean inputs (repeatable)")
    parser.add_argument("--dip-eval-samples", default="1,4,16,64", metavar="S[,S...]",
                        help="numbers of mixes averaged per example (default 1,4,16,64)")
    parser.add_argument("--valid-subset", default="test", help="split to evaluate (default test)")
    parser.add_argument("--batch-size", type=bounded(int, ">= 1"), default=250, help="examples per batch (default 250)")
    add_json_output(parser)
    add_user_dir(parser)
    parser.add_argument("--plot", metavar="FILE.png", help="also save accuracy versus S")
    args = parser.parse_args(argv)
    try:
        args.samples = [int(s) for s in args.dip_eval_samples.split(",")]
    except ValueError:
        args.samples = [0]
    if any(s < 1 for s in args.samples):
        parser.error(f"--dip-eval-samples {args.dip_eval_samples}: give integers >= 1 separated by commas, e.g. 1,4,16,64")
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


def by_seed(accuracies, flag):
    """``{training seed: accuracy}`` of ``{(path, seed): accuracy}``; a summary over seeds needs one checkpoint per seed."""
    seeds = {}
    for (path, seed), accuracy in accuracies.items():
        if seed in seeds:
            raise ConfigError(f"{flag}: {seeds[seed][0]} and {path} were both trained with --seed {seed}; "
                              "give one checkpoint per seed")
        seeds[seed] = (path, accuracy)
    return seed_statistics({seed: accuracy for seed, (_, accuracy) in seeds.items()})


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


def evaluate(args):
    results = {"subset": args.valid_subset, "dip": {}, "baselines": {}}
    if args.dip:
        per_s = {s: {} for s in args.samples}
        clean = {}
        for path in args.dip:
            model, cfg, task, dataset = load(path, args.data, args.valid_subset, "--dip")
            run = (path, cfg.common.seed)
            if cfg.criterion._name != "dip_cross_entropy":
                raise ConfigError(
                    f"--dip {path}: trained with --criterion {cfg.criterion._name}, not dip_cross_entropy; "
                    f"evaluate it with --baseline NAME={path}"
                )
            results["examples"] = len(dataset)
            for s in args.samples:
                cfg.criterion.dip_eval_samples = s
                per_s[s][run] = criterion_accuracy(task.build_criterion(cfg.criterion), model, dataset, args.batch_size)
                logger.info("%s S=%d: %.2f", path, s, per_s[s][run])
            clean[run] = clean_accuracy(model, dataset, args.batch_size)
        results["dip"] = {"checkpoints": args.dip, "samples": {str(s): by_seed(v, "--dip") for s, v in per_s.items()},
                          "clean": by_seed(clean, "--dip")}
    for name, paths in args.baselines.items():
        accuracies = {}
        for path in paths:
            model, cfg, _, dataset = load(path, args.data, args.valid_subset, "--baseline")
            results["examples"] = len(dataset)
            accuracies[path, cfg.common.seed] = clean_accuracy(model, dataset, args.batch_size)
        results["baselines"][name] = {"checkpoints": paths, **by_seed(accuracies, f"--baseline {name}")}
    return results


def mean_and_spread(result):
    return f"{result['mean']:.2f}" + ("" if result["std"] is None else f" ± {result['std']:.2f}")


def table(results):
    rows = [("method", "checkpoints", f"{results['subset']} accuracy (%)")]
    for name, result in results["baselines"].items():
        rows.append((name, str(len(result["checkpoints"])), mean_and_spread(result)))
    if results["dip"]:
        count = str(len(results["dip"]["checkpoints"]))
        rows.append(("dip, clean input", count, mean_and_spread(results["dip"]["clean"])))
        for s, result in results["dip"]["samples"].items():
            rows.append((f"dip, S={s}", count, mean_and_spread(result)))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows)


def plot(results, path):
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    def draw(axes):
        dip = results["dip"]
        if dip:
            samples = [int(s) for s in dip["samples"]]
            axes.errorbar(samples, [dip["samples"][str(s)]["mean"] for s in samples], color="C0",
                          yerr=[dip["samples"][str(s)]["std"] or 0.0 for s in samples], marker="o", capsize=3, label="DIP")
            axes.set_xscale("log", base=2)
            axes.set_xticks(samples, [str(s) for s in samples])
        for index, (name, result) in enumerate(results["baselines"].items(), start=1):
            color = f"C{index}"  # C0 is DIP's
            axes.axhline(result["mean"], linestyle="--", color=color, label=f"{name} (clean input)")
            spread = result["std"] or 0.0  # one seed: no spread
            axes.axhspan(result["mean"] - spread, result["mean"] + spread, color=color, alpha=0.15)
        axes.set_xlabel("S (mixes averaged per example)")
        axes.set_ylabel(f"{results['subset']} accuracy (%), mean ± std over checkpoints")
        axes.legend()

    save_png(path, draw)


def main(argv=None):
    args = parse_args(argv)
    setup_logging(quiet=prints_json(args))
    import_user_dir(args.user_dir)
    results = evaluate(args)
    if args.plot:
        plot(results, args.plot)
    write_results(results, args, table)


if __name__ == "__main__":
    main()
