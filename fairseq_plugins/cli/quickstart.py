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

import argparse
import os
import re
import shlex
import subprocess
import sys

from fairseq_plugins.cli.user_dir import user_dir
from fairseq_plugins.errors import ConfigError
from fairseq_plugins.synthetic_translation import write_corpus

SPLITS = ("train", "valid", "test")
SMALL_MODEL = (
    "--encoder-layers 2 --decoder-layers 2 --encoder-embed-dim 128 --decoder-embed-dim 128 "
    "--encoder-ffn-embed-dim 512 --decoder-ffn-embed-dim 512 "
    "--encoder-attention-heads 4 --decoder-attention-heads 4 --share-all-embeddings"
).split()


def read_lines(path):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().splitlines()
    except UnicodeDecodeError:
        raise ConfigError(f"--raw-dir: {path} is not UTF-8 text") from None


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


def run(command, log_path):
    print("+ " + shlex.join(command), file=sys.stderr, flush=True)
    with open(log_path, "w") as log:
        result = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        with open(log_path) as log:
            tail = log.read().splitlines()[-15:]
        sys.exit("\n".join(tail) + f"\nfairseq-plugins-quickstart: error: step failed, full log in {log_path}")


def fairseq_cli(name):
    """Run fairseq's CLI module with this interpreter (same venv, no PATH lookup)."""
    return [sys.executable, "-m", f"fairseq_cli.{name}"]


def hypotheses(generate_output, count):
    """fairseq-generate's detokenized hypotheses in test-set order."""
    by_id = {}
    for line in generate_output.splitlines():
        if line.startswith("H-"):
            sentence_id, _, text = line[2:].split("\t", 2)
            by_id[int(sentence_id)] = text
    if sorted(by_id) != list(range(count)):
        raise ConfigError(f"fairseq-generate translated {len(by_id)} of {count} test sentences")
    return [by_id[i] for i in range(count)]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="fairseq-plugins-quickstart", description=__doc__.split("\n\n")[0])
    parser.add_argument("--work-dir", default="quickstart", help="new or empty directory for every output")
    parser.add_argument("--raw-dir", help="use {train,valid,test}.{SRC,TGT} from here instead of the toy corpus")
    parser.add_argument("--source-lang", default="en")
    parser.add_argument("--target-lang", default="xx")
    parser.add_argument("--arch", default="b2t_transformer")
    parser.add_argument("--max-update", type=int, default=600)
    parser.add_argument("--train-size", type=int, default=20000, help="toy corpus training pairs")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if args.max_update < 1 or args.train_size < 1:
        parser.error("--max-update and --train-size must be positive")
    return args


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


def preprocess(raw, src, tgt, data, log_dir):
    run(fairseq_cli("preprocess") + [
        "--source-lang", src, "--target-lang", tgt, "--joined-dictionary", "--workers", "2",
        "--trainpref", f"{raw}/train", "--validpref", f"{raw}/valid", "--testpref", f"{raw}/test",
        "--destdir", data,
    ], os.path.join(log_dir, "preprocess.log"))


def train(data, save_dir, model_flags, max_update, seed, log_dir, name="train"):
    """fairseq-train of a small model (2+2 layers, d=128) with the quickstart's recipe."""
    run(fairseq_cli("train") + [
        data, "--user-dir", user_dir(), *model_flags, *SMALL_MODEL,
        "--optimizer", "adam", "--adam-betas", "(0.9, 0.98)", "--lr", "2e-3", "--lr-scheduler", "inverse_sqrt",
        "--warmup-updates", "100", "--criterion", "label_smoothed_cross_entropy", "--label-smoothing", "0.1",
        "--dropout", "0.1", "--max-tokens", "4096", "--max-update", str(max_update),
        "--save-dir", save_dir, "--no-epoch-checkpoints", "--seed", str(seed),
        "--log-format", "simple", "--log-interval", "100",
    ], os.path.join(log_dir, f"{name}.log"))


def final_valid_nll(train_log):
    """The ``nll_loss`` of fairseq-train's last validation (base 2, per target token)."""
    with open(train_log, encoding="utf-8") as f:
        losses = re.findall(r"valid on 'valid' subset \| loss [^|]+\| nll_loss ([0-9.]+)", f.read())
    if not losses:
        raise RuntimeError(f"{train_log}: fairseq-train logged no validation")
    return float(losses[-1])


def generate(data, checkpoint, count, log_dir, name="generate", flags=()):
    """fairseq-generate (beam 4, extra ``flags``) on the test split; returns its ``count`` hypotheses in
    test-set order."""
    output = os.path.join(log_dir, f"{name}.txt")
    run(fairseq_cli("generate") + [
        data, "--user-dir", user_dir(), "--path", checkpoint, "--gen-subset", "test", "--beam", "4",
        "--batch-size", "128", *flags,
    ], output)
    with open(output, encoding="utf-8") as f:
        return hypotheses(f.read(), count)


def corpus_bleu(system, references):
    """sacrebleu's corpus BLEU of ``system`` against one reference each, and its signature."""
    import sacrebleu

    bleu = sacrebleu.BLEU()
    return bleu.corpus_score(system, [references]), bleu.get_signature()


def generate_and_score(data, checkpoint, references, log_dir, name="generate"):
    """fairseq-generate (beam 4) on the test split; returns sacrebleu's score and signature."""
    return corpus_bleu(generate(data, checkpoint, len(references), log_dir, name), references)


if __name__ == "__main__":
    main()
