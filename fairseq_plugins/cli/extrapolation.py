"""``fairseq-plugins-extrapolation``: APE, RPE and SHAPE on sentences longer than any seen in training.

SHAPE's claim (Kiyono et al., 2021): trained on short sentences, a model with
shifted positions translates longer ones better than absolute positions (APE), on
par with relative positions (RPE, Shaw et al., 2018). This command builds the toy
corpus of the quickstart, keeps training and validation pairs whose source has at
most ``--max-train-length`` (L) tokens and test pairs whose source is longer, trains
the same small model once per ``--models`` entry with the real fairseq-train
(``--positions sinusoidal``, ``relative``, ``shape``), decodes the long test
sentences with fairseq-generate and prints, per model, the BLEU of all of them and
by source length, and the final validation NLL (bits per target token, on the short
validation pairs)::

    fairseq-plugins-extrapolation --work-dir extrapolation --max-train-length 15 --json --plot bleu.png

``--shape-max-shift`` takes one K or several (the authors sweep K = 10..40): with several,
SHAPE is trained once per K and its rows are named ``shape-k<K>`` (``shape-k<K>-offset0``)::

    fairseq-plugins-extrapolation --models shape --shape-max-shift 10,20,30,40 --max-update 2000 --json

Length buckets are 5 tokens wide above L, the last one open: at L = 15 with 500 test
pairs the toy corpus puts about 220, 135, 75 and 70 of them in 16-20, 21-25, 26-30
and >30. Empty buckets are left out.
"""

import math
import os

from fairseq_plugins.cli.common import add_json_output, command_parser, setup_logging, write_results
from fairseq_plugins.cli.plotting import check_plot_argument, save_png
from fairseq_plugins.cli.toy_experiment import corpus_bleu, final_valid_nll, generate, preprocess, read_lines, train
from fairseq_plugins.errors import ConfigError
from fairseq_plugins.options import bounded
from fairseq_plugins.synthetic_translation import write_corpus

SRC, TGT = "en", "xx"
MODELS = ("ape", "relative", "shape")
BUCKET_WIDTH, CLOSED_BUCKETS = 5, 3


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


def trained_models(args):
    """``(name, fairseq-train position flags)`` of each model to train: one per ``--models`` entry, SHAPE
    once per K of ``--shape-max-shift`` (named ``shape-k<K>`` when there are several)."""
    models = []
    for model in args.models:
        if model == "ape":
            models.append(("ape", ["--positions", "sinusoidal"]))
        elif model == "relative":
            models.append(("relative", ["--positions", "relative", "--relative-max-distance", str(args.relative_max_distance)]))
        else:
            several = len(args.shape_max_shift) > 1
            models += [(f"shape-k{k}" if several else "shape", ["--positions", "shape", "--shape-max-shift", str(k)])
                       for k in args.shape_max_shift]
    return models


def decodings(name):
    """``(row, fairseq-generate flags)`` of each decoding of model ``name``: SHAPE is decoded with the
    authors' evaluation offset k = K (its ``--shape-eval-offset max``) and with k = 0 (``shape-offset0``),
    whose positions 1..n a model trained with shifts 0..K-1 has seen for n up to L + K - 1."""
    rows = [(name, [])]
    if name.startswith("shape"):
        rows.append((f"{name}-offset0", ["--model-overrides", str({"shape_eval_offset": "zero"})]))
    return rows


def length_buckets(max_train_length):
    """``(name, shortest, longest)`` source lengths of each bucket of test pairs, in order."""
    first = max_train_length + 1
    closed = [(f"{low}-{low + BUCKET_WIDTH - 1}", low, low + BUCKET_WIDTH - 1)
              for low in range(first, first + CLOSED_BUCKETS * BUCKET_WIDTH, BUCKET_WIDTH)]
    open_from = first + CLOSED_BUCKETS * BUCKET_WIDTH
    return closed + [(f">{open_from - 1}", open_from, math.inf)]


def bucket_members(sources, max_train_length):
    """``{bucket name: indices of the test pairs whose source falls in it}``, non-empty buckets only."""
    members = {}
    for name, shortest, longest in length_buckets(max_train_length):
        indices = [i for i, source in enumerate(sources) if shortest <= len(source.split()) <= longest]
        if indices:
            members[name] = indices
    return members


def parse_args(argv=None):
    parser = command_parser("fairseq-plugins-extrapolation", __doc__)
    parser.add_argument("--work-dir", default="extrapolation", help="new or empty directory for every output")
    parser.add_argument("--max-train-length", type=bounded(int, "[1, 100]"), default=15,
                        help="L: longest training source")
    parser.add_argument("--models", default=",".join(MODELS),
                        help=f"comma-separated models to train, among {','.join(MODELS)} (APE: sinusoidal positions)")
    parser.add_argument("--shape-max-shift", default="40",
                        help="SHAPE's K, or several comma-separated (one SHAPE model each, rows shape-k<K>)")
    parser.add_argument("--relative-max-distance", type=bounded(int, ">= 1"), default=16,
                        help="RPE's k (Shaw et al.: 16)")
    parser.add_argument("--max-update", type=bounded(int, ">= 1"), default=600)
    parser.add_argument("--train-size", type=bounded(int, ">= 1"), default=30000,
                        help="toy pairs generated before the length filter")
    parser.add_argument("--test-size", type=bounded(int, ">= 1"), default=500, help="long test pairs kept")
    parser.add_argument("--seed", type=int, default=1)
    add_json_output(parser)
    parser.add_argument("--plot", metavar="FILE.png", help="save a bar chart of both BLEU scores")
    args = parser.parse_args(argv)
    models = args.models.split(",")
    if not set(models) <= set(MODELS) or len(set(models)) != len(models):
        parser.error(f"--models must list distinct names among {','.join(MODELS)}, comma-separated (got {args.models!r})")
    args.models = models
    shifts = args.shape_max_shift
    try:
        args.shape_max_shift = [int(k) for k in shifts.split(",")]
    except ValueError:
        args.shape_max_shift = []
    if not args.shape_max_shift or min(args.shape_max_shift) < 0 or len(set(args.shape_max_shift)) != len(args.shape_max_shift):
        parser.error(f"--shape-max-shift must be distinct integers >= 0, comma-separated (got {shifts!r})")
    check_plot_argument(parser, args.plot)
    return args


def save_plot(path, results, max_train_length):
    """BLEU of each model (one bar each) on all long test sources, then per length bucket."""
    groups = ["all", *results["bucket_pairs"]]
    models = list(results["bleu"])
    width = 0.8 / len(models)

    def draw(axes):
        for index, name in enumerate(models):
            scores = [results["bleu"][name], *(results["bleu_by_source_length"][name][group] for group in groups[1:])]
            axes.bar([x + index * width for x in range(len(groups))], scores, width, label=name)
        axes.set_xticks([x + width * (len(models) - 1) / 2 for x in range(len(groups))], groups)
        axes.set(xlabel="test source length (tokens)", ylabel="BLEU",
                 title=f"trained on sources of at most {max_train_length} tokens")
        axes.legend()

    save_png(path, draw, figsize=(6, 4))


def table(results):
    lines = [f"sources <= {results['max_train_length']} tokens in training ({results['pairs']['train']} pairs); "
             f"{results['pairs']['test']} test pairs with longer sources"]
    header = ["all", *(f"{bucket} ({count})" for bucket, count in results["bucket_pairs"].items())]
    lines.append(f"{'BLEU':>13} " + " ".join(f"{column:>12}" for column in header) + f" {'valid nll':>10}")
    for name, bleu in results["bleu"].items():
        scores = [bleu, *results["bleu_by_source_length"][name].values()]
        lines.append(f"{name:>13} " + " ".join(f"{value:>12.2f}" for value in scores) + f" {results['valid_nll'][name]:>10.3f}")
    lines.append(f"signature: {results['signature']}")
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    setup_logging(quiet=True)
    work = args.work_dir
    if os.path.exists(work) and (not os.path.isdir(work) or os.listdir(work)):
        raise ConfigError(f"--work-dir {work} already exists and is not empty; remove it or pass a new --work-dir")
    raw_all = write_corpus(os.path.join(work, "raw-all"),
                           (("train", args.train_size), ("valid", 1500), ("test", 3 * args.test_size)), seed=args.seed)
    raw, data = os.path.join(work, "raw"), os.path.join(work, "data-bin")
    counts = length_split(raw_all, raw, args.max_train_length, args.test_size)
    preprocess(raw, SRC, TGT, data, work)
    references = read_lines(os.path.join(raw, f"test.{TGT}"))
    buckets = bucket_members(read_lines(os.path.join(raw, f"test.{SRC}")), args.max_train_length)
    bleu, bleu_by_length, valid_nll, signature = {}, {}, {}, None
    for name, position_flags in trained_models(args):
        checkpoints = os.path.join(work, f"checkpoints-{name}")
        train(data, checkpoints, ["--arch", "composable_transformer", *position_flags], args.max_update,
              args.seed, work, name=f"train-{name}")
        for decoded, flags in decodings(name):
            valid_nll[decoded] = final_valid_nll(os.path.join(work, f"train-{name}.log"))
            system = generate(data, os.path.join(checkpoints, "checkpoint_last.pt"), len(references), work,
                              name=f"generate-{decoded}", flags=flags)
            score, signature = corpus_bleu(system, references)
            bleu[decoded] = round(score.score, 2)
            bleu_by_length[decoded] = {
                bucket: round(corpus_bleu([system[i] for i in indices], [references[i] for i in indices])[0].score, 2)
                for bucket, indices in buckets.items()
            }
    results = {"max_train_length": args.max_train_length, "pairs": counts,
               "bucket_pairs": {bucket: len(indices) for bucket, indices in buckets.items()},
               "bleu": bleu, "bleu_by_source_length": bleu_by_length, "valid_nll": valid_nll,
               "signature": str(signature)}
    write_results(results, args, table)
    if args.plot:
        save_plot(args.plot, results, args.max_train_length)


if __name__ == "__main__":
    main()
