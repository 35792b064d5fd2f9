"""``fairseq-plugins-influence``: influence of every training instance on every test instance.

For a checkpoint trained with turn-over dropout (``modules/turnover_dropout.py``)::

    I(j, t) = L(t; 1 - m_j) - L(t; m_j)

two forward passes per (test, training) pair, no gradients. Positive: training
instance ``j`` helped test instance ``t``; negative: it hurt. Usage (task options
as fairseq-validate takes them; ``--task`` defaults to the checkpoint's)::

    fairseq-plugins-influence DATA --user-dir "$(fairseq-plugins-dir)" --path checkpoint_best.pt \\
        --train-subset train --valid-subset valid --out influence/

explains the instances of ``--valid-subset`` (fairseq's flag, default valid) and
writes ``influence.npy`` (test x train, rows and columns in dataset-index order),
``self_influence.npy`` (``I(j, j)`` per training instance: large for instances
the network could only memorise, e.g. mislabelled ones) and
``summed_influence.npy`` (``sum_t I(j, t)`` over the test split: the most
negative are the most harmful training instances, the ones to drop in data
cleansing), and prints the top-k helpful and harmful training instances of each
test instance.
"""

import argparse
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from fairseq_plugins.cli.checkpoints import (
    batches_in_index_order, checkpoint_task_name, classifier_logits, load_checkpoint, load_split,
)
from fairseq_plugins.cli.common import setup_logging
from fairseq_plugins.errors import ConfigError
from fairseq_plugins.modules.turnover_dropout import influence, turnover_layers
from fairseq_plugins.options import bounded


def add_influence_args(parser):
    group = parser.add_argument_group("influence")
    group.add_argument("--out", required=True, metavar="DIR", help="directory for the .npy outputs")
    group.add_argument("--top-k", type=bounded(int, ">= 1"), default=3,
                       help="helpful/harmful training instances printed per test instance")
    group.add_argument("--print-tests", type=bounded(int, ">= -1"), default=20,
                       help="test instances whose top-k are printed (-1: all)")
    group.add_argument("--pairs-per-batch", type=bounded(int, ">= 1"), default=8192,
                       help="(test, train) pairs per forward pass")


def checkpoint_path(argv):
    path = next((argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == "--path"), None)
    if path is None:
        raise ConfigError("--path: give the checkpoint file to explain")
    return path


def parse_args(argv):
    from fairseq import options

    argv = list(sys.argv[1:] if argv is None else argv)
    asks_help = "-h" in argv or "--help" in argv
    default_task = "image_classification" if asks_help else None  # help lists that task's options
    if not asks_help:
        path = checkpoint_path(argv)
        default_task = None if "--task" in argv else checkpoint_task_name(path)

    def parser():
        p = options.get_validation_parser(default_task=default_task)
        p.prog = "fairseq-plugins-influence"
        # fairseq's usage runs to hundreds of lines; without it an error is the one line `prog: error: msg`.
        p.usage = argparse.SUPPRESS
        add_influence_args(p)
        return p

    args = options.parse_args_and_arch(parser(), argv)
    # Only what the command line gives overrides the checkpoint's configuration (as fairseq-validate).
    overrides = vars(options.parse_args_and_arch(parser(), argv, suppress_defaults=True))
    return args, overrides


def load(args, overrides):
    model, saved_cfg, task = load_checkpoint(args.path, overrides=overrides)
    if not turnover_layers(model):
        raise ConfigError(
            f"--path {args.path}: the model has no turn-over dropout layers; train it with --turnover-dropout "
            "(e.g. --arch turnover_image_mlp --criterion turnover_cross_entropy) to estimate influence"
        )
    train = load_split(task, saved_cfg, args.train_subset, "--train-subset")
    test = load_split(task, saved_cfg, args.valid_subset)
    return model, train, test


def batches(dataset, batch_size, flag):
    """Collated batches in dataset-index order, each with its instance ids, which must be the
    dataset indices: training masks were keyed by ``id``, the matrix is indexed by position."""
    start = 0
    for sample in batches_in_index_order(dataset, batch_size):
        if "id" not in sample:
            raise ConfigError(f"{flag}: the task's batches carry no 'id' (instance index); turn-over dropout needs it")
        if not torch.equal(sample["id"].cpu(), torch.arange(start, start + len(sample["id"]))):
            raise ConfigError(
                f"{flag}: instance {start}'s batch carries ids {sample['id'][:3].tolist()}...; turn-over dropout "
                "keys masks by id and needs ids equal to the dataset indices 0..N-1"
            )
        start += len(sample["id"])
        yield sample


def row_losses(model, net_input, target):
    """Cross-entropy of each row; when the model tiled its rows, the targets repeat once per id."""
    logits = classifier_logits(model, net_input)
    target = target.view(-1)  # sentence_prediction targets are (B, 1)
    if logits.size(0) != target.numel():
        target = target.repeat(logits.size(0) // target.numel())
    return F.cross_entropy(logits.float(), target.view(-1), reduction="none")


def repeat_rows(net_input, times, rows):
    """Every tensor with ``rows`` rows repeated ``times`` over (block k = all rows again)."""
    return {
        key: value.repeat(times, *[1] * (value.dim() - 1)) if torch.is_tensor(value) and value.size(0) == rows else value
        for key, value in net_input.items()
    }


def pair_influence(model, sample, ids):
    """I(ids[k], test row r) for every pair, as a (len(ids), n) tensor."""
    n = sample["id"].numel()
    if getattr(model, "tiles_at_first_mask", False):
        scores = influence(model, lambda: row_losses(model, sample["net_input"], sample["target"]), ids, rows_per_id=n)
    else:
        net_input, target = repeat_rows(sample["net_input"], len(ids), n), sample["target"].view(-1).repeat(len(ids))
        scores = influence(model, lambda: row_losses(model, net_input, target), ids.repeat_interleave(n))
    return scores.view(len(ids), n)


@torch.no_grad()
def influence_matrix(model, train, test, pairs_per_batch, progress=True):
    """(len(test), len(train)) float32 matrix of I(train j, test t), test rows by dataset index."""
    matrix = np.zeros((len(test), len(train)), dtype=np.float32)
    test_rows = min(len(test), pairs_per_batch)
    ids_per_pass = max(1, pairs_per_batch // test_rows)
    test_batches = list(batches(test, test_rows, "--valid-subset"))
    for _ in batches(train, pairs_per_batch, "--train-subset"):  # checks the training ids
        pass
    train_ids = torch.arange(len(train))
    passes = len(test_batches) * -(-len(train) // ids_per_pass)
    with tqdm(total=passes, desc="influence (test x train)", unit="pass", disable=not progress, file=sys.stderr) as bar:
        for sample in test_batches:
            for start in range(0, len(train), ids_per_pass):
                ids = train_ids[start : start + ids_per_pass]
                matrix[sample["id"].numpy()[:, None], ids.numpy()[None, :]] = pair_influence(model, sample, ids).T.numpy()
                bar.update()
    return matrix


@torch.no_grad()
def self_influence(model, train, batch_size, progress=True):
    """I(j, j) for every training instance j: its own loss without versus with its sub-network."""
    scores = np.zeros(len(train), dtype=np.float32)
    for sample in tqdm(list(batches(train, batch_size, "--train-subset")), desc="self-influence", disable=not progress, file=sys.stderr):
        scores[sample["id"].numpy()] = influence(
            model, lambda: row_losses(model, sample["net_input"], sample["target"]), sample["id"]
        ).numpy()
    return scores


def describe(ids, scores):
    return ", ".join(f"{j} ({s:+.3f})" for j, s in zip(ids, scores))


def report(matrix, self_scores, summed, top_k, print_tests):
    shown = len(matrix) if print_tests < 0 else min(print_tests, len(matrix))
    for t in range(shown):
        order = np.argsort(matrix[t])
        print(f"test {t}: helpful {describe(order[::-1][:top_k], matrix[t, order[::-1][:top_k]])} | "
              f"harmful {describe(order[:top_k], matrix[t, order[:top_k]])}")
    order = np.argsort(self_scores)[::-1][:top_k]
    print(f"highest self-influence (candidates for mislabelled data): {describe(order, self_scores[order])}")
    order = np.argsort(summed)[:top_k]
    print(f"most harmful to the test split (summed influence): {describe(order, summed[order])}")


def main(argv=None):
    setup_logging(quiet=True)
    args, overrides = parse_args(argv)
    model, train, test = load(args, overrides)
    progress = not args.no_progress_bar
    matrix = influence_matrix(model, train, test, args.pairs_per_batch, progress)
    self_scores = self_influence(model, train, args.pairs_per_batch, progress)
    summed = matrix.sum(0)
    os.makedirs(args.out, exist_ok=True)
    for name, array in (("influence", matrix), ("self_influence", self_scores), ("summed_influence", summed)):
        np.save(os.path.join(args.out, f"{name}.npy"), array)
    report(matrix, self_scores, summed, args.top_k, args.print_tests)
    print(f"wrote {args.out}/influence.npy ({matrix.shape[0]} test x {matrix.shape[1]} train), "
          "self_influence.npy, summed_influence.npy")


if __name__ == "__main__":
    main()
