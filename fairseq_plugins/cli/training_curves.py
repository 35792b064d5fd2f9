"""``fairseq-plugins-training-curves``: loss and gradient-norm curves of fairseq-train logs.

Reads the logs fairseq-train writes with ``--log-format simple`` (or ``json``): the
``train_inner`` records (``loss``, ``gnorm`` per ``--log-interval``), the validation losses, and the lines of the
``monitored_*`` tasks (``loss spike at update N``, ``layer grad norms | update N | ...``).
Prints one summary row per log (updates, last and best training loss, largest gradient norm,
spikes, best validation perplexity) or, with ``--json``, the curves themselves; ``--plot FILE.png`` draws loss and
gradient norm against updates, one line per log::

    fairseq-plugins-training-curves logs/vanilla.log logs/scaled.log --plot curves.png
"""

import json
import os
import re
import sys

from fairseq_plugins.cli.common import add_json_output, command_parser, setup_logging, write_results
from fairseq_plugins.cli.fairseq_runs import validations
from fairseq_plugins.cli.plotting import check_plot_argument, save_png

INNER_SIMPLE = re.compile(r"\| train_inner \| .*")
SPIKE = re.compile(r"loss spike at update (\d+)")
FIELD = re.compile(r"(\w+)=([-+.\deEinfa]+)")


def parse_log(lines):
    """``{"updates": [...], "loss": [...], "gnorm": [...], "spike_updates": [...]}`` from one log."""
    curves = {"updates": [], "loss": [], "gnorm": [], "spike_updates": [], "valid_loss": []}
    for line in lines:
        record = None
        if INNER_SIMPLE.search(line):
            record = dict(FIELD.findall(line))
        elif '"num_updates"' in line and '"loss"' in line and "train_inner" in line:
            record = json.loads(line[line.index("{"):])
        curves["valid_loss"] += [float(valid["loss"]) for valid in validations(line) if "loss" in valid]
        spike = SPIKE.search(line)
        if spike:
            curves["spike_updates"].append(int(spike.group(1)))
        if record and "num_updates" in record and "loss" in record:
            curves["updates"].append(int(float(record["num_updates"])))
            curves["loss"].append(float(record["loss"]))
            curves["gnorm"].append(float(record.get("gnorm", "nan")))
    return curves


def summary(curves):
    finite = [value for value in curves["loss"] if value == value]
    return {
        "updates": curves["updates"][-1] if curves["updates"] else 0,
        "last_loss": curves["loss"][-1] if curves["loss"] else None,
        "best_loss": min(finite) if finite else None,
        "max_gnorm": max(curves["gnorm"]) if curves["gnorm"] else None,
        # fairseq's losses are base 2: perplexity = 2 ** loss
        "best_valid_ppl": 2 ** min(curves["valid_loss"]) if curves["valid_loss"] else None,
        "spikes": len(curves["spike_updates"]),
    }


def save_plot(path, runs):
    def draw(axes):
        loss_axes, gnorm_axes = axes
        for label, curves in runs.items():
            line, = loss_axes.plot(curves["updates"], curves["loss"], label=label)
            gnorm_axes.plot(curves["updates"], curves["gnorm"], color=line.get_color(), label=label)
            for update in curves["spike_updates"]:
                loss_axes.axvline(update, color=line.get_color(), alpha=0.3, linewidth=0.8)
        loss_axes.set(yscale="log", xlabel="update", ylabel="training loss (base 2)", title="training loss (vertical lines: spikes)")
        gnorm_axes.set(yscale="log", xlabel="update", ylabel="gradient norm", title="gradient norm")
        loss_axes.legend()

    save_png(path, draw, figsize=(11, 4), panels=2)


def table(results):
    lines = [f"{'run':>24} {'updates':>8} {'last loss':>10} {'best loss':>10} {'max gnorm':>10} {'spikes':>7} "
             f"{'valid ppl':>10}"]
    for label, row in results.items():
        valid = "-" if row["best_valid_ppl"] is None else f"{row['best_valid_ppl']:.2f}"
        lines.append(f"{label:>24} {row['updates']:>8} {row['last_loss']:>10.3f} {row['best_loss']:>10.3f} "
                     f"{row['max_gnorm']:>10.3f} {row['spikes']:>7} {valid:>10}")
    return "\n".join(lines)


def main(argv=None):
    setup_logging(quiet=True)
    parser = command_parser("fairseq-plugins-training-curves", __doc__)
    parser.add_argument("logs", nargs="+", metavar="LOG", help="fairseq-train logs (stdout)")
    parser.add_argument("--labels", nargs="+", help="one name per log (default: the file names)")
    add_json_output(parser, "the curves")
    parser.add_argument("--plot", metavar="FILE.png", help="draw loss and gradient norm against updates")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    labels = args.labels or [os.path.splitext(os.path.basename(path))[0] for path in args.logs]
    if len(labels) != len(args.logs):
        parser.error(f"--labels: {len(labels)} names for {len(args.logs)} logs")
    check_plot_argument(parser, args.plot)
    runs = {}
    for label, path in zip(labels, args.logs):
        if not os.path.isfile(path):
            parser.error(f"{path}: no such file")
        with open(path, errors="replace") as log:
            runs[label] = parse_log(log)
        if not runs[label]["updates"]:
            parser.error(f"{path}: no train_inner records (was it written by fairseq-train --log-format simple?)")
    write_results({label: {**curves, **summary(curves)} for label, curves in runs.items()}, args, table)
    if args.plot:
        save_plot(args.plot, runs)


if __name__ == "__main__":
    main()
