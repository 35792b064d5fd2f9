"""``fairseq-plugins-quickstart``: B2T end to end on a corpus built here, no download.

Steps, each the real fairseq CLI (the commands are printed to stderr as they run):

1. write a deterministic toy translation corpus (fairseq_plugins/synthetic_translation.py),
   or take ``--raw-dir`` with ``{train,valid,test}.{SRC,TGT}`` plain-text files;
2. ``fairseq-preprocess --joined-dictionary``;
3. ``fairseq-train --user-dir <this package> --arch b2t_transformer`` at small dims;
4. ``fairseq-generate`` on the test split (beam 4);
5. score with sacrebleu and print the BLEU with its signature.

About 3 minutes on 2 CPU cores with the defaults.
"""

import os

from fairseq_plugins.cli.common import command_parser
from fairseq_plugins.cli.toy_experiment import generate_and_score, preprocess, read_lines, train
from fairseq_plugins.errors import ConfigError
from fairseq_plugins.options import bounded
from fairseq_plugins.synthetic_translation import write_corpus

SPLITS = ("train", "valid", "test")


def check_raw_dir(raw_dir, src, tgt):
    """Every split exists, is non-empty and has as many source as target lines."""
    for split in SPLITS:
        paths = [os.path.join(raw_dir, f"{split}.{lang}") for lang in (src, tgt)]
        for path in paths:
            if not os.path.isfile(path):
                raise ConfigError(f"--raw-dir: missing file {path} (need {{train,valid,test}}.{{{src},{tgt}}})")
        source, target = (read_lines(path) for path in paths)
        if not source:
            raise ConfigError(f"--raw-dir: {paths[0]} is empty")
        if len(source) != len(target):
            raise ConfigError(f"--raw-dir: {paths[0]} has {len(source)} lines but {paths[1]} has {len(target)}")


def parse_args(argv=None):
    parser = command_parser("fairseq-plugins-quickstart", __doc__)
    parser.add_argument("--work-dir", default="quickstart", help="new or empty directory for every output")
    parser.add_argument("--raw-dir", help="use {train,valid,test}.{SRC,TGT} from here instead of the toy corpus")
    parser.add_argument("--source-lang", default="en")
    parser.add_argument("--target-lang", default="xx")
    parser.add_argument("--arch", default="b2t_transformer")
    parser.add_argument("--max-update", type=bounded(int, ">= 1"), default=600)
    parser.add_argument("--train-size", type=bounded(int, ">= 1"), default=20000, help="toy corpus training pairs")
    parser.add_argument("--seed", type=int, default=1)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    work = args.work_dir
    if os.path.exists(work) and (not os.path.isdir(work) or os.listdir(work)):
        raise ConfigError(f"--work-dir {work} already exists and is not empty; remove it or pass a new --work-dir")
    src, tgt = args.source_lang, args.target_lang
    if args.raw_dir:
        check_raw_dir(args.raw_dir, src, tgt)
        raw = args.raw_dir
    else:
        raw = write_corpus(os.path.join(work, "raw"), (("train", args.train_size), ("valid", 500), ("test", 500)),
                           src=src, tgt=tgt, seed=args.seed)
    os.makedirs(work, exist_ok=True)
    data, checkpoints = os.path.join(work, "data-bin"), os.path.join(work, "checkpoints")

    preprocess(raw, src, tgt, data, work)
    train(data, checkpoints, ["--arch", args.arch], args.max_update, args.seed, work)
    references = read_lines(os.path.join(raw, f"test.{tgt}"))
    score, signature = generate_and_score(data, os.path.join(checkpoints, "checkpoint_last.pt"), references, work)
    print(f"{score}\nsignature: {signature}")


if __name__ == "__main__":
    main()
