"""The smallest setting in which vanilla embeddings spike and the scaled / layernorm treatments do not.

Spike No More (Takase et al.) predicts loss spikes for a Pre-LN language model whose residual
stream starts small (vanilla embeddings, std sqrt(2/(5d))) and none for scaled (x sqrt(d)) or
layernorm embeddings. This sweep trains the three treatments with train.sh (every option of the
recipe; per-update logging, no checkpoint, no validation) over a grid of settings, cheapest first:
model (LAYERSxWIDTH) outermost, then warmup from longest to shortest, then learning rate from
smallest to largest, and stops at the first setting in which vanilla spikes or diverges while both
other treatments train without a spike (``--all``: run the whole grid). A spike is what the
recipe's monitor counts (a training loss above SPIKE_FACTOR x the median of the recent ones; the
environment's SPIKE_FACTOR, as train.sh); a run that stops on non-finite gradients has diverged.
Character-level text (prepare.sh with CHARS=1) lets a small model's loss fall far enough in a few
hundred updates for a spike to stand out:

    CHARS=1 WORK_DIR=/tmp/lm-chars bash recipes/lm_spike/prepare.sh
    SPIKE_FACTOR=1.2 WORK_DIR=/tmp/lm-chars python recipes/lm_spike/sweep.py --models 2x128,2x256,4x256 \
        --warmups 100,10 --lrs 1e-2,3e-2,1e-1 --max-update 600 --max-tokens 1024

A rerun reuses every finished run of the same budget (its log). Prints one row per run (with how close
the loss came to a spike, and the largest gradient norm over its median after warmup) and writes
$WORK_DIR/sweep/sweep.json (every run's summary, the grid,
the setting found) and sweep/curves.png (loss and gradient norm of the three runs of the setting
found, or of the last setting run when none qualifies).
"""

import argparse
import json
import logging
import os
import re
import statistics
import subprocess
import sys

from fairseq_plugins.cli.training_curves import parse_log, save_plot, summary

HERE = os.path.dirname(os.path.abspath(__file__))
TREATMENTS = ("vanilla", "scaled", "layernorm")


def model_shape(text):
    """``"4x256"`` -> ``(4, 256)``: layers and width (heads of 32 dimensions, FFN 4 x width)."""
    try:
        layers, width = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--models takes LAYERSxWIDTH entries such as 2x128 (got {text!r})") from None
    if layers < 1 or width < 32 or width % 32:
        raise argparse.ArgumentTypeError(f"--models {text}: layers >= 1 and a width that is a multiple of 32")
    return layers, width


def comma_list(kind, name):
    def parse(text):
        try:
            values = [kind(value) for value in text.split(",")]
        except ValueError:
            raise argparse.ArgumentTypeError(f"--{name} takes comma-separated numbers (got {text!r})") from None
        if min(values) < 0:
            raise argparse.ArgumentTypeError(f"--{name} values must be >= 0 (got {text!r})")
        return values
    return parse


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="sweep.py", description=__doc__.split("\n\n")[0], usage=argparse.SUPPRESS)
    parser.add_argument("--models", type=lambda text: [model_shape(part) for part in text.split(",")],
                        default="2x128,4x128,4x256", help="LAYERSxWIDTH entries, cheapest first")
    parser.add_argument("--lrs", type=comma_list(float, "lrs"), default="3e-3,1e-2,3e-2")
    parser.add_argument("--warmups", type=comma_list(int, "warmups"), default="100,20")
    parser.add_argument("--max-update", type=int, default=400)
    parser.add_argument("--max-tokens", type=int, default=2048)
    parser.add_argument("--all", action="store_true", help="run the whole grid instead of stopping at the first hit")
    args = parser.parse_args(argv)
    if args.max_update < 20 or args.max_tokens < 128:
        parser.error("--max-update must be >= 20 and --max-tokens >= 128 (one 128-token block)")
    return args


def settings(args):
    """The grid in the order it is searched: cheapest model first, then gentlest warmup and lr."""
    for layers, width in sorted(args.models, key=lambda shape: shape[0] * shape[1] ** 2):
        for warmup in sorted(args.warmups, reverse=True):
            for lr in sorted(args.lrs):
                yield {"layers": layers, "width": width, "warmup": warmup, "lr": lr}


def setting_name(setting):
    return f"{setting['layers']}x{setting['width']}-w{setting['warmup']}-lr{setting['lr']:g}"


def finished(log_path, args):
    """Whether ``log_path`` is a finished (or diverged) run of this budget, which a rerun reuses."""
    if not os.path.exists(log_path):
        return False
    with open(log_path, errors="replace") as log:
        text = log.read()
    done = "done training" in text or os.path.exists(log_path[:-len(".log")] + ".diverged")
    budget = f"'max_update': {args.max_update}," in text and f"'max_tokens': {args.max_tokens}," in text
    spike_factor = f"'spike_factor': {float(os.environ.get('SPIKE_FACTOR', 1.5))}" in text
    return done and budget and spike_factor


def largest_loss_ratio(losses, window=100, min_history=10):
    """max over updates of loss / median of the previous ``window`` losses: how close a run came to
    the monitor's spike threshold (its test, except that earlier spikes stay in the history here,
    where the monitor leaves them out)."""
    ratios = [loss / statistics.median(losses[max(0, i - window):i]) for i, loss in enumerate(losses)
              if i >= min_history]
    return max(ratios, default=None)


def train(work_dir, log_dir, treatment, setting, args):
    """One train.sh run (reused when its log is a finished run of the same budget); ``(summary with
    "diverged", the largest loss ratio and the gradient-norm ratio after warmup, curves)``."""
    name = f"{treatment}-{setting_name(setting)}"
    log_path = os.path.join(log_dir, f"{name}.log")
    env = dict(os.environ, WORK_DIR=work_dir, LOG_DIR=log_dir, RUN_NAME=name, MAX_UPDATE=str(args.max_update),
               MAX_TOKENS=str(args.max_tokens), WARMUP=str(setting["warmup"]))
    width = setting["width"]
    if not finished(log_path, args):
        subprocess.run(["bash", os.path.join(HERE, "train.sh"), treatment, f"{setting['lr']:g}",
                        "--decoder-layers", str(setting["layers"]), "--decoder-embed-dim", str(width),
                        "--decoder-ffn-embed-dim", str(4 * width), "--decoder-attention-heads", str(width // 32),
                        "--log-interval", "1", "--no-save", "--disable-validation"],
                       env=env, check=True, stdout=subprocess.DEVNULL)
    with open(log_path, errors="replace") as log:
        text = log.read()
    curves = parse_log(text.splitlines())
    row = summary(curves)
    row["spike_factor"] = float(re.search(r"'spike_factor': ([0-9.]+)", text).group(1))  # the monitor's, as logged
    row["diverged"] = os.path.exists(log_path[:-len(".log")] + ".diverged")
    row["spike_updates"] = curves["spike_updates"]
    row["largest_loss_ratio"] = largest_loss_ratio(curves["loss"])
    after_warmup = [g for update, g in zip(curves["updates"], curves["gnorm"]) if update > setting["warmup"] and g == g]
    row["gnorm_max_over_median_after_warmup"] = max(after_warmup) / statistics.median(after_warmup) if after_warmup else None
    return row, curves


def unstable(row):
    return row["diverged"] or row["spikes"] > 0


def qualifies(rows):
    """The sweep's target: vanilla spikes (or diverges) and neither scaled nor layernorm does."""
    return unstable(rows["vanilla"]) and not any(unstable(rows[treatment]) for treatment in TREATMENTS[1:])


def main(argv=None):
    logging.basicConfig(level=logging.WARNING, force=True)  # no matplotlib debug lines
    args = parse_args(argv)
    work_dir = os.path.abspath(os.environ.get("WORK_DIR", "lm_spike"))
    out = os.path.join(work_dir, "sweep")
    log_dir = os.path.join(out, "logs")
    os.makedirs(log_dir, exist_ok=True)
    runs, found, last_curves = [], None, None

    def save():  # after every setting: an interrupted sweep keeps what it ran
        result = {"max_update": args.max_update, "max_tokens": args.max_tokens, "tokens_per_sample": 128,
                  "grid": {"models": [f"{l}x{w}" for l, w in args.models], "warmups": args.warmups, "lrs": args.lrs},
                  "found": found, "curves_of": found or last_curves[0], "runs": runs}
        with open(os.path.join(out, "sweep.json"), "w") as f:
            json.dump(result, f, indent=1)

    print(f"{'setting':<22} {'treatment':<10} {'spikes':>6} {'diverged':>8} {'best loss':>9} {'last loss':>9} "
          f"{'max loss/median':>15} {'max gnorm':>9} {'gnorm max/median':>16}", flush=True)
    for setting in settings(args):
        rows, curves = {}, {}
        for treatment in TREATMENTS:
            rows[treatment], curves[treatment] = train(work_dir, log_dir, treatment, setting, args)
            row = rows[treatment]
            runs.append({**setting, "treatment": treatment, **row})
            numbers = [row[key] if row[key] is not None else float("nan") for key in
                       ("best_loss", "last_loss", "largest_loss_ratio", "max_gnorm", "gnorm_max_over_median_after_warmup")]
            print(f"{setting_name(setting):<22} {treatment:<10} {row['spikes']:>6} {str(row['diverged']):>8} "
                  f"{numbers[0]:>9.3f} {numbers[1]:>9.3f} {numbers[2]:>15.3f} {numbers[3]:>9.3f} {numbers[4]:>16.1f}",
                  flush=True)
        last_curves = (setting, curves)
        if found is None and qualifies(rows):
            found = setting
            save_plot(os.path.join(out, "curves.png"), curves)
        save()
        if found and not args.all:
            break
    if found is None:
        save_plot(os.path.join(out, "curves.png"), last_curves[1])
    if found:
        print(f"smallest setting where vanilla spikes and scaled/layernorm do not: {setting_name(found)}")
    else:
        print("no setting of the grid where vanilla spikes and scaled/layernorm do not")
    print(f"results: {out}/sweep.json, curves: {out}/curves.png")


if __name__ == "__main__":
    sys.exit(main())
