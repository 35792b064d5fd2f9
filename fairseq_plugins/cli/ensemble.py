"""``fairseq-plugins-ensemble``: accuracy of each member, of the probability-averaged ensemble, and its diversity.

    fairseq-plugins-ensemble DATA --path a.pt:b.pt:c.pt [--valid-subset test] [--combinations 2,3] [--json]

For classifiers (fairseq's ``sentence_prediction`` with RoBERTa-style models, this package's
``image_classification`` and their ``ticket_`` variants): every member's accuracy on the split,
the accuracy of the mean of the members' softmax probabilities, ``diff`` = ensemble - mean
single, and the pairwise diversity of the members' per-example correctness (mean over pairs):
Q statistic, disagreement, double fault, correlation coefficient (``modules/pruning.py``), plus
the mean pairwise IoU of the kept masks when every member has a ``mask.pt`` beside it. For a
regression head (``--regression-target``, e.g. STS-B) the metric is Pearson's r of the
predictions and the ensemble averages them; the correctness-based measures do not apply (null).

``--combinations K``: the same numbers averaged over every ensemble of K of the members (the
paper's protocol: every C(10, k) subset of 10 members, k = 2..5), from one pass over the data.

Members must come from one task and one dictionary (or label set): both are checked on the
checkpoints' own data before anything is evaluated. For seq2seq tickets, the ensemble is
fairseq's own: ``fairseq-generate DATA --path a.pt:b.pt``.
"""

import argparse
import itertools
import json
import logging
import math
import os
import sys

import torch

import fairseq_plugins  # noqa: F401  (fills fairseq's registries)
from fairseq_plugins.cli.checkpoints import (
    batches_in_index_order, checkpoint_task_name, load_checkpoint, load_split, read_checkpoint_state,
)
from fairseq_plugins.errors import ConfigError
from fairseq_plugins.modules import pruning
from fairseq_plugins.tasks.ticket_training import TICKET_PREFIX

logger = logging.getLogger("fairseq_plugins.ensemble")
CLASSIFICATION_TASKS = ("sentence_prediction", "image_classification")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="fairseq-plugins-ensemble", description=__doc__.split("\n\n")[0])
    parser.usage = argparse.SUPPRESS  # an error is one line, `prog: error: msg`
    parser.add_argument("data", help="the data directory to evaluate on")
    parser.add_argument("--path", required=True, metavar="A.pt:B.pt[:...]", help="member checkpoints, colon-separated")
    parser.add_argument("--valid-subset", default="test", help="split to evaluate (default test)")
    parser.add_argument("--batch-size", type=int, default=64, help="examples per batch (default 64)")
    parser.add_argument("--combinations", default="", metavar="K[,K...]",
                        help="also average over every sub-ensemble of K members (the paper's C(10, k) protocol)")
    parser.add_argument("--json", action="store_true", help="print only the JSON results to stdout")
    args = parser.parse_args(argv)
    args.paths = [path for path in args.path.split(":") if path]
    if len(args.paths) < 2:
        parser.error(f"--path needs two or more checkpoints separated by ':' (got {args.path!r})")
    text = args.combinations
    try:
        args.combinations = [int(k) for k in text.split(",") if k.strip()]
    except ValueError:
        args.combinations = [0]
    if any(not 2 <= k <= len(args.paths) for k in args.combinations):
        parser.error(f"--combinations {text}: give sizes from 2 to {len(args.paths)} (the members) separated by commas")
    if args.batch_size < 1:
        parser.error(f"--batch-size must be at least 1 (got {args.batch_size})")
    return args


def base_task(name):
    return name[len(TICKET_PREFIX):] if name and name.startswith(TICKET_PREFIX) else name


def vocabulary(path):
    """What members must share: the symbols of every dictionary of the checkpoint's own task, or its classes."""
    from fairseq import tasks

    cfg = read_checkpoint_state(path)["cfg"]
    if not os.path.exists(str(cfg.task.data)):
        logger.warning(f"{path}: its data {cfg.task.data} is gone; its dictionary is not checked")
        return None
    task = tasks.setup_task(cfg.task)
    found = {kind: tuple(getattr(task, kind).symbols) for kind in ("source_dictionary", "target_dictionary", "label_dictionary")
             if getattr(task, kind, None) is not None}
    return found or {"classes": getattr(task, "num_classes", None)}


def check_members(paths):
    names = [base_task(checkpoint_task_name(path)) for path in paths]
    for path, name in zip(paths, names):
        if name != names[0]:
            raise ConfigError(f"--path: {path} was trained with task {name}, {paths[0]} with {names[0]}; members need one task")
    if names[0] not in CLASSIFICATION_TASKS:
        raise ConfigError(f"--path: task {names[0]} is not a classification task ({', '.join(CLASSIFICATION_TASKS)}); "
                          "for seq2seq models fairseq-generate --path a.pt:b.pt is the ensemble")
    vocabularies = [vocabulary(path) for path in paths]
    for path, found in zip(paths, vocabularies):
        if found is not None and vocabularies[0] is not None and found != vocabularies[0]:
            differing = ", ".join(kind for kind in found if found[kind] != vocabularies[0].get(kind))
            raise ConfigError(f"--path: {path} and {paths[0]} have different dictionaries ({differing}); "
                              "members must share them")


def model_outputs(model, cfg, net_input):
    """(B, C) logits, or (B, 1) predictions of a regression head."""
    heads = getattr(model, "classification_heads", None)
    if heads is not None:  # fairseq's RoBERTa: the head named by the sentence_prediction criterion
        output, _ = model(**net_input, features_only=True, classification_head_name=cfg.criterion.classification_head_name)
    else:
        output, _ = model(**net_input)
    return output.float()


def member_outputs(path, data, subset, batch_size):
    model, cfg, task = load_checkpoint(path, data)
    dataset = load_split(task, cfg, subset, "--valid-subset")
    outputs, targets = [], []
    with torch.no_grad():
        for batch in batches_in_index_order(dataset, batch_size):
            outputs.append(model_outputs(model, cfg, batch["net_input"]))
            targets.append(batch["target"].view(len(batch["id"]), -1).squeeze(-1))  # sentence_prediction: (B, 1)
    regression = bool(getattr(cfg.task, "regression_target", False))
    return torch.cat(outputs), torch.cat(targets), regression


def pearson(x, y):
    x, y = x.double() - x.double().mean(), y.double() - y.double().mean()
    return float((x * y).sum() / (x.norm() * y.norm()))


def scores(outputs, targets, regression):
    """Single scores, their mean, the ensemble's, diff and the diversity measures of ``outputs`` (one per member)."""
    if regression:
        predictions = [output.view(-1) for output in outputs]
        singles = [100 * pearson(p, targets.view(-1)) for p in predictions]
        ensemble = 100 * pearson(torch.stack(predictions).mean(0), targets.view(-1))
        diversity = dict.fromkeys(("q_statistic", "disagreement", "double_fault", "correlation"))
    else:
        correct = [output.argmax(-1) == targets for output in outputs]
        singles = [100 * c.double().mean().item() for c in correct]
        mean_probability = torch.stack([output.softmax(-1) for output in outputs]).mean(0)
        ensemble = 100 * (mean_probability.argmax(-1) == targets).double().mean().item()
        diversity = pruning.ensemble_diversity(correct)
    single = sum(singles) / len(singles)
    return {"single": singles, "mean_single": single, "ensemble": ensemble, "diff": ensemble - single, **diversity}


def mean_over(results):
    """Field-wise mean of several ``scores`` results (None where any is None)."""
    keys = [key for key in results[0] if key != "single"]
    return {key: None if any(r[key] is None for r in results) else sum(r[key] for r in results) / len(results) for key in keys}


def evaluate(args):
    check_members(args.paths)
    outputs, targets = [], None
    for path in args.paths:
        output, target, regression = member_outputs(path, args.data, args.valid_subset, args.batch_size)
        if targets is not None and not torch.equal(target, targets):
            raise ConfigError(f"--path: {path} sees other targets on {args.valid_subset} than {args.paths[0]}")
        outputs.append(output)
        targets = target
    masks = [os.path.join(os.path.dirname(path), "mask.pt") for path in args.paths]
    iou = None
    if all(os.path.exists(mask) for mask in masks):
        iou = pruning.mean_pairwise_iou([torch.load(mask, weights_only=True) for mask in masks])
    results = {"subset": args.valid_subset, "examples": len(targets), "metric": "pearson" if regression else "accuracy",
               "members": args.paths, **scores(outputs, targets, regression), "mask_iou": iou}
    if args.combinations:
        results["combinations"] = {
            str(k): {"ensembles": math.comb(len(outputs), k),
                     **mean_over([scores([outputs[i] for i in subset], targets, regression)
                                  for subset in itertools.combinations(range(len(outputs)), k)])}
            for k in args.combinations}
    return results


def table(results):
    def number(value, digits=4):
        return "n/a" if value is None else f"{value:.{digits}f}"

    lines = [f"{results['metric']} on {results['subset']} ({results['examples']} examples)"]
    lines += [f"  member {path}: {score:.2f}" for path, score in zip(results["members"], results["single"])]
    lines.append(f"  single (mean) {results['mean_single']:.2f} | ensemble {results['ensemble']:.2f} | diff {results['diff']:+.2f}")
    lines.append("  Q statistic {} | disagreement {} | double fault {} | correlation {} | mask IoU {}".format(
        *(number(results[key]) for key in ("q_statistic", "disagreement", "double_fault", "correlation", "mask_iou"))))
    for k, summary in results.get("combinations", {}).items():
        lines.append(f"  every {k} of {len(results['members'])} ({summary['ensembles']} ensembles, mean): single "
                     f"{summary['mean_single']:.2f} | ensemble {summary['ensemble']:.2f} | diff {summary['diff']:+.2f} | "
                     f"Q {number(summary['q_statistic'])} | disagreement {number(summary['disagreement'])}")
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.json else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s | %(levelname)s | %(name)s | %(message)s")
    results = evaluate(args)
    print(json.dumps(results, indent=1) if args.json else table(results))


if __name__ == "__main__":
    main()
