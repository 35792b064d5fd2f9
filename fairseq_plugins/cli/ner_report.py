"""``fairseq-plugins-ner-report``: per-type precision, recall and F1 of a span_ner checkpoint.

    fairseq-plugins-ner-report DATA --path checkpoint_best.pt --valid-subset test [--json [FILE]]

Decodes the split as the span_ner criterion does (greedy, non-overlapping) and prints seqeval's
strict IOB2 report: one row per entity type, then the micro average (the ``precision``,
``recall`` and ``f1`` that fairseq-validate logs) and the macro average.
"""

from seqeval.metrics import classification_report
from seqeval.scheme import IOB2

import fairseq_plugins  # noqa: F401  (fills fairseq's registries)
from fairseq_plugins.cli.checkpoints import load_checkpoint, load_split
from fairseq_plugins.cli.common import (
    add_json_output, add_user_dir, command_parser, import_user_dir, prints_json, setup_logging, write_results,
)
from fairseq_plugins.errors import ConfigError
from fairseq_plugins.options import bounded


def parse_args(argv=None):
    parser = command_parser("fairseq-plugins-ner-report", __doc__)
    parser.add_argument("data", help="the data directory the checkpoint was trained on")
    parser.add_argument("--path", required=True, metavar="CKPT", help="a span_ner checkpoint")
    parser.add_argument("--valid-subset", default="test", help="split to score (default test)")
    parser.add_argument("--batch-size", type=bounded(int, ">= 1"), default=32, help="sentences per batch (default 32)")
    add_user_dir(parser)
    add_json_output(parser, "the report")
    args = parser.parse_args(argv)
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
    setup_logging(quiet=prints_json(args))
    import_user_dir(args.user_dir)
    model, cfg, task = load_checkpoint(args.path, data=args.data)
    if not hasattr(task, "predict"):
        raise ConfigError(f"--path {args.path}: trained with --task {cfg.task._name}, not span_ner")
    gold, predicted = tag_sequences(task, model, load_split(task, cfg, args.valid_subset), args.batch_size)
    report = classification_report(gold, predicted, mode="strict", scheme=IOB2, output_dict=True, zero_division=0)
    results = {"checkpoint": args.path, "subset": args.valid_subset, "sentences": len(gold),
               "report": {name: percent(row) for name, row in report.items()}}
    table = classification_report(gold, predicted, mode="strict", scheme=IOB2, digits=4, zero_division=0)
    write_results(results, args, lambda _: table)


if __name__ == "__main__":
    main()
