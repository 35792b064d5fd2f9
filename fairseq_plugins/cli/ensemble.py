"""``fairseq-plugins-ensemble``: accuracy of each member, of the probability-averaged ensemble, and its diversity.

    fairseq-plugins-ensemble DATA --path a.pt:b.pt:c.pt [--path d.pt:e.pt:f.pt ...] [--valid-subset test] \\
        [--combinations 2,3] [--json [FILE]] [--user-dir DIR]

For classifiers (fairseq's ``sentence_prediction`` with RoBERTa-style models, this package's
``image_classification`` and their ``ticket_`` variants). Each ``--path`` is one seed group of
members. Reported by default, the paper's protocol (Kobayashi et al., 2022: two seed groups of
10, every C(10, k), k = 2..5): for every sub-ensemble of k members, k = 2..min(5, members), the
mean single score, the accuracy of the mean of the members' softmax probabilities and ``diff`` =
ensemble - mean single, averaged over the sub-ensembles of each size, then over the sizes (each
size weighs the same) and the seed groups. Beside it, the same numbers for the ensemble of all
members of a group, averaged over the groups, with the mean pairwise IoU of the kept masks when
every member has a ``mask.pt`` beside it. Diversity is that of the members' per-example
correctness, averaged over pairs: Q statistic, disagreement, double fault, correlation
coefficient (``modules/pruning.py``). For a regression head (``--regression-target``, e.g. STS-B)
the metric is Pearson's r of the predictions and the ensemble averages them; the
correctness-based measures do not apply (null).

Members must come from one task and one dictionary (or label set): both are checked on the
checkpoints' own data before anything is evaluated. For seq2seq tickets, the ensemble is
fairseq's own: ``fairseq-generate DATA --path a.pt:b.pt``.
"""

import itertools
import logging
import math
import os

import torch

import fairseq_plugins  # noqa: F401  (fills fairseq's registries)
from fairseq_plugins.cli.checkpoints import (
    batches_in_index_order, checkpoint_task_name, load_checkpoint, load_split, read_checkpoint_state,
)
from fairseq_plugins.cli.common import (
    add_json_output, add_user_dir, command_parser, import_user_dir, prints_json, setup_logging, write_results,
)
from fairseq_plugins.errors import ConfigError
from fairseq_plugins.modules import pruning
from fairseq_plugins.options import bounded
from fairseq_plugins.tasks.ticket_training import TICKET_PREFIX

logger = logging.getLogger("fairseq_plugins.ensemble")
CLASSIFICATION_TASKS = ("sentence_prediction", "image_classification")
LARGEST_PROTOCOL_SIZE = 5  # the paper's k = 2..5
DIVERSITY = ("q_statistic", "disagreement", "double_fault", "correlation")


def parse_args(argv=None):
    parser = command_parser("fairseq-plugins-ensemble", __doc__)
    parser.add_argument("data", help="the data directory to evaluate on")
    parser.add_argument("--path", required=True, action="append", metavar="A.pt:B.pt[:...]",
                        help="one seed group of member checkpoints, colon-separated; repeat for further seed groups")
    parser.add_argument("--valid-subset", default="test", help="split to evaluate (default test)")
    parser.add_argument("--batch-size", type=bounded(int, ">= 1"), default=64, help="examples per batch (default 64)")
    parser.add_argument("--combinations", metavar="K[,K...]",
                        help="sub-ensemble sizes averaged (default 2..min(5, members): the paper's protocol)")
    add_json_output(parser)
    add_user_dir(parser)
    args = parser.parse_args(argv)
    args.groups = [[path for path in group.split(":") if path] for group in args.path]
    members = len(args.groups[0])
    for group, text in zip(args.groups, args.path):
        if len(group) < 2:
            parser.error(f"--path needs two or more checkpoints separated by ':' (got {text!r})")
        if len(group) != members:
            parser.error(f"--path: every seed group needs as many members (got {members} and {len(group)})")
    if args.combinations is None:
        args.combinations = list(range(2, min(LARGEST_PROTOCOL_SIZE, members) + 1))
    else:
        text = args.combinations
        try:
            args.combinations = sorted({int(k) for k in text.split(",") if k.strip()})
        except ValueError:
            args.combinations = [0]
        if not args.combinations or any(not 2 <= k <= members for k in args.combinations):
            parser.error(f"--combinations {text}: give sizes from 2 to {members} (the members) separated by commas")
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
    dataset = load_split(task, cfg, subset)
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
    """Field-wise mean of several ``scores`` results (None where any is None); per-member lists are left out."""
    keys = [key for key in results[0] if key != "single"]
    return {key: None if any(r[key] is None for r in results) else sum(r[key] for r in results) / len(results) for key in keys}


def mask_iou(paths):
    """Mean pairwise IoU of the members' kept masks (``mask.pt`` beside each checkpoint), else None."""
    masks = [os.path.join(os.path.dirname(path), "mask.pt") for path in paths]
    if not all(os.path.exists(mask) for mask in masks):
        return None
    return pruning.mean_pairwise_iou([torch.load(mask, weights_only=True) for mask in masks])


def seed_group(paths, outputs, targets, regression, sizes):
    """One seed group: its members' scores, the all-member ensemble and the mean over every sub-ensemble of each size."""
    members = [outputs[path] for path in paths]
    everyone = scores(members, targets, regression)
    by_size = {str(k): {"ensembles": math.comb(len(members), k),
                        **mean_over([scores([members[i] for i in subset], targets, regression)
                                     for subset in itertools.combinations(range(len(members)), k)])}
               for k in sizes}
    return {"members": paths, "single": everyone.pop("single"), "all_members": {**everyone, "mask_iou": mask_iou(paths)},
            "by_size": by_size}


def evaluate(args):
    paths = list(dict.fromkeys(path for group in args.groups for path in group))
    check_members(paths)
    outputs, targets = {}, None
    for path in paths:
        output, target, regression = member_outputs(path, args.data, args.valid_subset, args.batch_size)
        if targets is not None and not torch.equal(target, targets):
            raise ConfigError(f"--path: {path} sees other targets on {args.valid_subset} than {paths[0]}")
        outputs[path] = output
        targets = target
    groups = [seed_group(group, outputs, targets, regression, args.combinations) for group in args.groups]
    protocol = mean_over([{key: value for key, value in size.items() if key != "ensembles"}
                          for group in groups for size in group["by_size"].values()])
    return {"subset": args.valid_subset, "examples": len(targets), "metric": "pearson" if regression else "accuracy",
            "members_per_group": len(args.groups[0]), "combinations": args.combinations, "protocol": protocol,
            "all_members": mean_over([group["all_members"] for group in groups]), "seed_groups": groups}


def table(results):
    def number(value, digits=4):
        return "n/a" if value is None else f"{value:.{digits}f}"

    def line(summary):
        return (f"single (mean) {summary['mean_single']:.2f} | ensemble {summary['ensemble']:.2f} | "
                f"diff {summary['diff']:+.2f} | Q {number(summary['q_statistic'])} | "
                f"disagreement {number(summary['disagreement'])} | double fault {number(summary['double_fault'])} | "
                f"correlation {number(summary['correlation'])}")

    groups, sizes = results["seed_groups"], ",".join(map(str, results["combinations"]))
    members = results["members_per_group"]
    lines = [f"{results['metric']} on {results['subset']} ({results['examples']} examples), "
             f"{len(groups)} seed group(s) of {members} members",
             f"  every sub-ensemble of {sizes} members (mean): {line(results['protocol'])}",
             f"  all {members} members: {line(results['all_members'])} | mask IoU {number(results['all_members']['mask_iou'])}"]
    for index, group in enumerate(groups):
        lines.append(f"  seed group {index + 1}:")
        lines += [f"    member {path}: {score:.2f}" for path, score in zip(group["members"], group["single"])]
        lines.append(f"    all members: {line(group['all_members'])}")
        lines += [f"    every {k} of {members} ({summary['ensembles']} ensembles, mean): {line(summary)}"
                  for k, summary in group["by_size"].items()]
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    setup_logging(quiet=prints_json(args))
    import_user_dir(args.user_dir)
    write_results(evaluate(args), args, table)


if __name__ == "__main__":
    main()
