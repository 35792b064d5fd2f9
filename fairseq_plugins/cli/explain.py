"""``fairseq-plugins-explain``: the training instances behind an instance-based model's predictions.

    fairseq-plugins-explain DATA --path checkpoint_best.pt --valid-subset test [--top-k 5] \\
        [--json [explanations.json]] [--print N]

``DATA`` is the data directory the checkpoint was trained on. The checkpoint's task builds the
report: ``task.explain(model, dataset, top_k, batch_size)`` returns a JSON-able
``{"summary": {...}, "predictions": [...]}``; ``span_ner`` (``tasks/span_ner.py``): every predicted
entity with its top-k training spans (sentence id, text, label, score); ``dependency_parsing``: every
predicted arc with the training edges that contribute most to its score. Both summaries give the
plausibility of the explanations beside the label prior. The report is printed (the first
``--print`` predictions, then the summary, by ``LINES[task]`` below); ``--json`` prints the whole
report as JSON instead, ``--json FILE`` writes it to FILE.
"""

import fairseq_plugins  # noqa: F401  (fills fairseq's registries)
from fairseq_plugins.cli.checkpoints import load_checkpoint, load_split
from fairseq_plugins.cli.common import (
    add_json_output, add_user_dir, command_parser, import_user_dir, prints_json, setup_logging, write_results,
)
from fairseq_plugins.errors import ConfigError
from fairseq_plugins.options import bounded


def parse_args(argv=None):
    parser = command_parser("fairseq-plugins-explain", __doc__)
    parser.add_argument("data", help="the data directory the checkpoint was trained on")
    parser.add_argument("--path", required=True, metavar="CKPT", help="checkpoint of an instance-based model")
    parser.add_argument("--valid-subset", default="test", help="split whose predictions are explained (default test)")
    parser.add_argument("--top-k", type=bounded(int, ">= 1"), default=5,
                        help="training instances shown per prediction (default 5)")
    parser.add_argument("--batch-size", type=bounded(int, ">= 1"), default=32, help="sentences per batch (default 32)")
    parser.add_argument("--print", type=bounded(int, ">= -1"), default=20, dest="print_items", metavar="N",
                        help="predictions printed (default 20; -1: all; the JSON has all)")
    add_user_dir(parser)
    add_json_output(parser, "the whole report")
    args = parser.parse_args(argv)
    return args


def span_lines(report, max_items):
    """span_ner's report: the first ``max_items`` predictions (-1: all), then the summary."""
    shown = report["predictions"] if max_items < 0 else report["predictions"][:max_items]
    for prediction in shown:
        yield f"S-{prediction['sentence']} [{prediction['start']}, {prediction['end']}] {prediction['text']!r} -> {prediction['label']}"
        for rank, n in enumerate(prediction["neighbours"], 1):
            yield f"    {rank}. {n['score']:9.4f}  {n['label']:<12} train S-{n['sentence']} [{n['start']}, {n['end']}] {n['text']!r}"
    summary = report["summary"]
    yield (f"{summary['predicted_entities']} predicted entities, memory of {summary['memory_spans']} training spans: "
           f"plausibility {summary['plausibility']:.2f}% (top-1 training span has the predicted label), "
           f"label prior {summary['label_prior']:.2f}%")


def arc_lines(report, max_items):
    """dependency_parsing's report: the first ``max_items`` predictions (-1: all), then the summary."""
    shown = report["predictions"] if max_items < 0 else report["predictions"][:max_items]
    for p in shown:
        yield (f"{p['sentence']} {p['dependent']} {p['word']!r} <-{p['label']}- {p['head']} {p['head_word']!r}  "
               f"arc score {p['arc_score']:.4f} (gold: {p['gold_head']} {p['gold_label']})")
        for rank, edge in enumerate(p["top"], 1):
            yield (f"    {rank}. {edge['contribution']:+.4e}  {edge['label']:<10} train {edge['train_sentence']} "
                   f"{edge['dependent']} {edge['word']!r} <- {edge['head']} {edge['head_word']!r}")
        for rank, edge in enumerate(p.get("label_top", []), 1):
            yield (f"    label {rank}. {edge['similarity']:+.4f}  {edge['label']:<10} train {edge['train_sentence']} "
                   f"{edge['dependent']} {edge['word']!r} <- {edge['head']} {edge['head_word']!r}")
    summary = report["summary"]
    label_space = (f"plausibility {summary['plausibility']:.2f}% (most similar training edge in the label space "
                   f"has the predicted label), " if "plausibility" in summary else "")
    yield (f"{summary['predicted_arcs']} predicted arcs, {summary['training_edges']} training edges "
           f"({summary['similarity']}): {label_space}arc plausibility {summary['arc_plausibility']:.2f}% (largest "
           f"arc contribution from an edge with the predicted label), label prior {summary['label_prior']:.2f}%")


LINES = {"span_ner": span_lines, "dependency_parsing": arc_lines}  # task: printable lines of its report


def main(argv=None):
    args = parse_args(argv)
    setup_logging(quiet=prints_json(args))
    import_user_dir(args.user_dir)
    model, cfg, task = load_checkpoint(args.path, data=args.data)
    if cfg.task._name not in LINES:
        raise ConfigError(f"--path {args.path}: task {cfg.task._name} has no explanations ({', '.join(LINES)} have)")
    dataset = load_split(task, cfg, args.valid_subset)
    report = task.explain(model, dataset, args.top_k, args.batch_size)
    report["summary"].update(checkpoint=args.path, subset=args.valid_subset)
    write_results(report, args, lambda report: "\n".join(LINES[cfg.task._name](report, args.print_items)))


if __name__ == "__main__":
    main()
