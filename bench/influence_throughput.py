"""Influence pairs per second: turn-over dropout versus captum's TracInCP, same model, same data.

One ``turnover_image_mlp`` (built by fairseq from the same flags the recipe trains) scores
``--tests`` x ``--train`` (test, training) pairs of Fashion-MNIST (sklearn digits when the IDX
files are absent) both ways, alternately for ``--rounds`` rounds; prints the median pairs per
second of each and their ratio, then the same for self-influence (instances per second)::

    python bench/influence_throughput.py
    python bench/influence_throughput.py --tests 500 --train 6000 --checkpoints 6

Turn-over dropout costs two forward passes per pair (layers below the first mask run once per
test instance); TracInCP costs one per-example gradient per instance and checkpoint, then a dot
product per pair and checkpoint, so its pairs per second grow with the matrix and shrink with
``--checkpoints``. The weights are untrained: neither cost depends on their values.
"""

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time

import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "recipes", "influence"))
from baselines import Logits, tracincp  # noqa: E402

from fairseq_plugins.cli.influence import influence_matrix, self_influence  # noqa: E402

FASHION = "/usr/share/datasets/fashion-mnist"


class Subset:
    """The first ``count`` instances of a fairseq dataset (ids stay 0..count-1)."""

    def __init__(self, dataset, count):
        self.dataset, self.count = dataset, min(count, len(dataset))

    def __len__(self):
        return self.count

    def __getitem__(self, index):
        return self.dataset[index]

    def collater(self, samples):
        return self.dataset.collater(samples)


def build(args):
    from fairseq import options, tasks
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    import fairseq_plugins  # noqa: F401

    data = args.data or (FASHION if os.path.exists(FASHION) else "sklearn_digits")
    # sklearn digits are a format, read from no directory (the task still wants one).
    location = [".", "--data-format", "sklearn_digits"] if data == "sklearn_digits" else [data]
    parser = options.get_training_parser(default_task="image_classification")
    flags = [*location, "--arch", "turnover_image_mlp", "--hidden-dim", str(args.hidden_dim), "--criterion", "turnover_cross_entropy"]
    cfg = convert_namespace_to_omegaconf(options.parse_args_and_arch(parser, flags))
    task = tasks.setup_task(cfg.task)
    model = task.build_model(cfg.model).eval()
    for split in ("train", "test"):
        task.load_dataset(split)
    return data, model, Subset(task.dataset("train"), args.train), Subset(task.dataset("test"), args.tests)


def tensors(dataset):
    sample = dataset.collater([dataset[i] for i in range(len(dataset))])
    return sample["net_input"]["images"], sample["target"]


def timed(function):
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="image_classification data (default: Fashion-MNIST IDX, else sklearn_digits)")
    parser.add_argument("--tests", type=int, default=200)
    parser.add_argument("--train", type=int, default=2000)
    parser.add_argument("--hidden-dim", type=int, default=128)
    parser.add_argument("--checkpoints", type=int, default=1, help="TracInCP checkpoints (copies of the same weights)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, force=True)

    data, model, train, test = build(args)
    train_images, train_labels = tensors(train)
    test_images, test_labels = tensors(test)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "checkpoint.pt")
        torch.save({"model": model.state_dict()}, path)
        tracin = tracincp(Logits(model), [path] * args.checkpoints, train_images, train_labels)
        timings = {"turn-over dropout": [], f"TracInCP ({args.checkpoints} checkpoint(s))": []}
        self_timings = {name: [] for name in timings}
        for round_ in range(args.rounds):
            jobs = [
                (lambda: influence_matrix(model, train, test, 8192, progress=False),
                 lambda: self_influence(model, train, 8192, progress=False)),
                (lambda: tracin.influence((test_images, test_labels)),
                 lambda: tracin.self_influence()),
            ]
            order = list(zip(timings, jobs))
            for name, (pairs, selfs) in order if round_ % 2 == 0 else order[::-1]:  # alternate who goes first
                timings[name].append(len(train) * len(test) / timed(pairs))
                self_timings[name].append(len(train) / timed(selfs))
    print(f"data {data}: {len(test)} test x {len(train)} train, MLP hidden {args.hidden_dim} x 2, "
          f"{torch.get_num_threads()} threads, median of {args.rounds} rounds")
    for title, table, unit in (("influence matrix", timings, "pairs/s"), ("self-influence", self_timings, "instances/s")):
        medians = {name: statistics.median(values) for name, values in table.items()}
        for name, value in medians.items():
            print(f"  {title:<17} {name:<28} {value:>12,.0f} {unit}")
        turnover, tracin_rate = medians.values()
        print(f"  {title:<17} ratio turn-over / TracInCP: {turnover / tracin_rate:.2f}")


if __name__ == "__main__":
    main()
