"""``fairseq-plugins-ner-report``: per-type precision, recall and F1 of a span_ner checkpoint.

    fairseq-plugins-ner-report DATA --path checkpoint_best.pt --subset test [--json-file FILE]

Decodes the split as the span_ner criterion does (greedy, non-overlapping) and prints seqeval's
strict IOB2 report: one row per entity type, then the micro average (the ``precision``,
``recall`` and ``f1`` that fairseq-validate logs) and the macro average.
"""

import argparse
import json
import logging
import sys

from seqeval.metrics import classification_report
from seqeval.scheme import IOB2

import fairseq_plugins  # noqa: F401  (fills fairseq's registries)
from fairseq_plugins.cli.checkpoints import load_checkpoint, load_split
from fairseq_plugins.errors import ConfigError


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="fairseq-plugins-ner-report", description=__doc__.split("\n\n")[0])
    parser.usage = argparse.SUPPRESS  # an error is one line, `prog: error: msg`
    parser.add_argument("data", help="the data directory the checkpoint was trained on")
    parser.add_argument("--path", required=True, metavar="CKPT", help="a span_ner checkpoint")
    parser.add_argument("--subset", default="test", help="split to score (default test)")
    parser.add_argument("--batch-size", type=int, default=32, help="sentences per batch (default 32)")
    parser.add_argument("--json-file", metavar="FILE", help="also write the report as JSON to FILE")
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error(f"--batch-size must be at least 1, got {args.batch_size}")
    return args


def tag_sequences(task, model, dataset, batch_size):
    """Gold and predicted IOB2 tags of every sentence of the split."""
    gold, predicted = [], []
    for batch, _, decoded in task.predict(model, dataset, batch_size):
        gold.extend(batch["gold_tags"])
        predicted.extend(task.predicted_tags(spans, len(tags)) for spans, tags in zip(decoded, batch["gold_tags"]))
    return gold, predicted


def percent(row):
    return {key: 100.0 * value if key != "support" else int(value) for key, value in row.items()}


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s | %(levelname)s | %(name)s | %(message)s")
    model, cfg, task = load_checkpoint(args.path, data=args.data)
    if not hasattr(task, "predict"):
        raise ConfigError(f"--path {args.path}: trained with --task {cfg.task._name}, not span_ner")
    gold, predicted = tag_sequences(task, model, load_split(task, cfg, args.subset), args.batch_size)
    report = classification_report(gold, predicted, mode="strict", scheme=IOB2, output_dict=True, zero_division=0)
    print(classification_report(gold, predicted, mode="strict", scheme=IOB2, digits=4, zero_division=0))
    if args.json_file:
        rows = {name: percent(row) for name, row in report.items()}
        with open(args.json_file, "w", encoding="utf-8") as file:
            json.dump({"checkpoint": args.path, "subset": args.subset, "sentences": len(gold), "report": rows}, file, indent=1)


if __name__ == "__main__":
    main()
