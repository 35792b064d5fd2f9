"""The small translation experiment behind the quickstart and the toy-corpus probes
(``fairseq-plugins-quickstart``, ``-alone-quality``, ``-extrapolation``, ``bench/alone_inference.py``):
each step is the real fairseq command, run by ``fairseq_runs.run_fairseq`` with its log in a work
directory.

``preprocess`` (joined dictionary) -> ``train`` (2+2 layers, d = 128, Adam, inverse-sqrt warmup,
label smoothing 0.1) -> ``generate`` (beam 4 on the test split) -> ``corpus_bleu`` (sacrebleu, with
its signature); ``final_valid_nll`` reads the last validation of a training log.
"""

import os

from fairseq_plugins.cli.fairseq_runs import fairseq_command, last_validation, run_fairseq
from fairseq_plugins.cli.user_dir import user_dir
from fairseq_plugins.errors import ConfigError

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


def preprocess(raw, src, tgt, data, log_dir):
    run_fairseq(fairseq_command("preprocess") + [
        "--source-lang", src, "--target-lang", tgt, "--joined-dictionary", "--workers", "2",
        "--trainpref", f"{raw}/train", "--validpref", f"{raw}/valid", "--testpref", f"{raw}/test",
        "--destdir", data,
    ], os.path.join(log_dir, "preprocess.log"))


def train(data, save_dir, model_flags, max_update, seed, log_dir, name="train"):
    """fairseq-train of a small model (2+2 layers, d=128) with the quickstart's recipe."""
    run_fairseq(fairseq_command("train") + [
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
        return float(last_validation(f.read(), "valid", train_log)["nll_loss"])


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


def generate(data, checkpoint, count, log_dir, name="generate", flags=()):
    """fairseq-generate (beam 4, extra ``flags``) on the test split; returns its ``count`` hypotheses in
    test-set order."""
    output = os.path.join(log_dir, f"{name}.txt")
    run_fairseq(fairseq_command("generate") + [
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
