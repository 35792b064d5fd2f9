"""``fairseq-plugins-explain``: the training instances behind an instance-based model's predictions.

    fairseq-plugins-explain DATA --path checkpoint_best.pt --subset test [--top-k 5] \\
        [--json-file explanations.json] [--print N]

``DATA`` is the data directory the checkpoint was trained on. The checkpoint's task does the
task-specific part: ``task.explain(model, dataset, top_k, batch_size)`` returns a JSON-able report
``{"summary": {...}, "predictions": [...]}`` and ``task.explanation_lines(report, max_items)`` its
printable lines. ``span_ner`` (``tasks/span_ner.py``): every predicted entity with its top-k
training spans (sentence id, text, label, score), and the plausibility of the explanations beside
the label prior. The report is printed (the first ``--print`` predictions, then the summary) and
written to ``--json-file``.
"""

import argparse
import json
import logging
import sys

import fairseq_plugins  # noqa: F401  (fills fairseq's registries)
from fairseq_plugins.cli.checkpoints import load_checkpoint, load_split
from fairseq_plugins.errors import ConfigError


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="fairseq-plugins-explain", description=__doc__.split("\n\n")[0])
    parser.usage = argparse.SUPPRESS  # an error is one line, `prog: error: msg`
    parser.add_argument("data", help="the data directory the checkpoint was trained on")
    parser.add_argument("--path", required=True, metavar="CKPT", help="checkpoint of an instance-based model")
    parser.add_argument("--subset", default="test", help="split whose predictions are explained (default test)")
    parser.add_argument("--top-k", type=int, default=5, help="training instances shown per prediction (default 5)")
    parser.add_argument("--batch-size", type=int, default=32, help="sentences per batch (default 32)")
    parser.add_argument("--print", type=int, default=20, dest="print_items", metavar="N",
                        help="predictions printed (default 20; -1: all; the JSON file has all)")
    parser.add_argument("--json-file", metavar="FILE", help="write the whole report as JSON to FILE")
    args = parser.parse_args(argv)
    if args.top_k < 1:
        parser.error(f"--top-k must be at least 1, got {args.top_k}")
    if args.batch_size < 1:
        parser.error(f"--batch-size must be at least 1, got {args.batch_size}")
    return args


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s | %(levelname)s | %(name)s | %(message)s")
    model, cfg, task = load_checkpoint(args.path, data=args.data)
    if not hasattr(task, "explain"):
        raise ConfigError(f"--path {args.path}: task {cfg.task._name} has no explanations (span_ner has)")
    dataset = load_split(task, cfg, args.subset)
    report = task.explain(model, dataset, args.top_k, args.batch_size)
    report["summary"].update(checkpoint=args.path, subset=args.subset)
    for line in task.explanation_lines(report, args.print_items):
        print(line)
    if args.json_file:
        with open(args.json_file, "w", encoding="utf-8") as file:
            json.dump(report, file, indent=1, ensure_ascii=False)


if __name__ == "__main__":
    main()
