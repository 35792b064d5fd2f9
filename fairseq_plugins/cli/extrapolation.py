"""``fairseq-plugins-extrapolation``: APE versus SHAPE on sentences longer than any seen in training.

SHAPE's claim (Kiyono et al., 2021): trained on short sentences, a model with
shifted positions translates longer ones better than absolute positions (APE).
This command builds the toy corpus of the quickstart, keeps training and
validation pairs whose source has at most ``--max-train-length`` tokens and test
pairs whose source is longer, trains the same small model twice with the real
fairseq-train (``--positions sinusoidal``, then ``--positions shape``), decodes
the long test sentences with fairseq-generate and prints both BLEU scores::

    fairseq-plugins-extrapolation --work-dir extrapolation --max-train-length 15 --json --plot bleu.png
"""

import argparse
import json
import logging
import os

from fairseq_plugins.cli.quickstart import generate_and_score, preprocess, read_lines, train
from fairseq_plugins.cli.plotting import check_plot_argument, save_png
from fairseq_plugins.errors import ConfigError
from fairseq_plugins.synthetic_translation import write_corpus

SRC, TGT = "en", "xx"


def length_split(raw_all, raw, max_train_length, test_size):
    """Short pairs for train/valid, long ones (source > max_train_length) for test."""
    os.makedirs(raw, exist_ok=True)
    counts = {}
    for split, keep in (("train", lambda n: n <= max_train_length), ("valid", lambda n: n <= max_train_length),
                        ("test", lambda n: n > max_train_length)):
        source = read_lines(os.path.join(raw_all, f"{split}.{SRC}"))
        target = read_lines(os.path.join(raw_all, f"{split}.{TGT}"))
        pairs = [(s, t) for s, t in zip(source, target) if keep(len(s.split()))]
        if split == "test":
            pairs = pairs[:test_size]
        if not pairs:
            raise ConfigError(f"--max-train-length {max_train_length}: no {split} pairs left; choose 5..40")
        for lang, column in ((SRC, 0), (TGT, 1)):
            with open(os.path.join(raw, f"{split}.{lang}"), "w", encoding="utf-8") as f:
                f.writelines(pair[column] + "\n" for pair in pairs)
        counts[split] = len(pairs)
    return counts


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="fairseq-plugins-extrapolation", description=__doc__.split("\n\n")[0])
    parser.add_argument("--work-dir", default="extrapolation", help="new or empty directory for every output")
    parser.add_argument("--max-train-length", type=int, default=15, help="L: longest training source")
    parser.add_argument("--shape-max-shift", type=int, default=40, help="SHAPE's K")
    parser.add_argument("--max-update", type=int, default=600)
    parser.add_argument("--train-size", type=int, default=30000, help="toy pairs generated before the length filter")
    parser.add_argument("--test-size", type=int, default=500, help="long test pairs kept")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")
    parser.add_argument("--plot", metavar="FILE.png", help="save a bar chart of both BLEU scores")
    args = parser.parse_args(argv)
    if not 1 <= args.max_train_length <= 100:
        parser.error(f"--max-train-length must be in 1..100 (got {args.max_train_length})")
    if min(args.max_update, args.train_size, args.test_size) < 1:
        parser.error("--max-update, --train-size and --test-size must be positive")
    check_plot_argument(parser, args.plot)
    return args


def save_plot(path, results, max_train_length):
    def draw(axes):
        names = list(results["bleu"])
        axes.bar(names, [results["bleu"][name] for name in names], color=["tab:gray", "tab:blue"])
        axes.set(ylabel="BLEU", title=f"test sources longer than {max_train_length} tokens")

    save_png(path, draw, figsize=(4, 4))


def main(argv=None):
    logging.basicConfig(level=logging.WARNING, force=True)
    args = parse_args(argv)
    work = args.work_dir
    if os.path.exists(work) and (not os.path.isdir(work) or os.listdir(work)):
        raise ConfigError(f"--work-dir {work} already exists and is not empty; remove it or pass a new --work-dir")
    raw_all = write_corpus(os.path.join(work, "raw-all"),
                           (("train", args.train_size), ("valid", 1500), ("test", 3 * args.test_size)), seed=args.seed)
    raw, data = os.path.join(work, "raw"), os.path.join(work, "data-bin")
    counts = length_split(raw_all, raw, args.max_train_length, args.test_size)
    preprocess(raw, SRC, TGT, data, work)
    references = read_lines(os.path.join(raw, f"test.{TGT}"))
    models = {"ape": ["--positions", "sinusoidal"],
              "shape": ["--positions", "shape", "--shape-max-shift", str(args.shape_max_shift)]}
    bleu, signature = {}, None
    for name, flags in models.items():
        checkpoints = os.path.join(work, f"checkpoints-{name}")
        train(data, checkpoints, ["--arch", "composable_transformer", *flags], args.max_update, args.seed, work,
              name=f"train-{name}")
        score, signature = generate_and_score(data, os.path.join(checkpoints, "checkpoint_last.pt"), references,
                                              work, name=f"generate-{name}")
        bleu[name] = round(score.score, 2)
    results = {"max_train_length": args.max_train_length, "pairs": counts, "bleu": bleu, "signature": str(signature)}
    if args.json:
        print(json.dumps(results))
    else:
        print(f"sources <= {args.max_train_length} tokens in training ({counts['train']} pairs); "
              f"{counts['test']} test pairs with longer sources")
        for name, value in bleu.items():
            print(f"{name:>6}: BLEU {value:.2f}")
        print(f"signature: {signature}")
    if args.plot:
        save_plot(args.plot, results, args.max_train_length)


if __name__ == "__main__":
    main()
