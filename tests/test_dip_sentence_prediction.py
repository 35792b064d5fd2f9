"""Mixup and DIP on fairseq's own sentence_prediction task with transformer_classifier (mixing point:
the embedding output), through fairseq-preprocess, fairseq-train and fairseq-validate."""

import random
import re

import pytest

from conftest import USER_DIR, run_cli

TINY = ["--arch", "transformer_classifier", "--encoder-layers", 2, "--encoder-embed-dim", 128,
        "--encoder-ffn-embed-dim", 256, "--encoder-attention-heads", 4]
FAST = ["--optimizer", "adam", "--lr", "1e-3", "--batch-size", 32, "--num-workers", 0, "--no-progress-bar",
        "--log-format", "simple", "--no-epoch-checkpoints", "--num-classes", 2, "--max-positions", 64]


def write_sentiment(path, count, rng):
    """Sentences of filler words with 'good' and 'bad'; label pos when 'good' is the more frequent."""
    sentences, labels = [], []
    for _ in range(count):
        words = rng.choices(["the", "a", "film", "was", "plot", "actor", "very", "not"], k=rng.randint(2, 9))
        good, bad = rng.randint(0, 3), rng.randint(0, 3)
        good += good == bad
        words += ["good"] * good + ["bad"] * bad
        rng.shuffle(words)
        sentences.append(" ".join(words))
        labels.append("pos" if good > bad else "neg")
    (path / "input0").write_text("\n".join(sentences) + "\n")
    (path / "label").write_text("\n".join(labels) + "\n")


@pytest.fixture(scope="module")
def sentiment_bin(tmp_path_factory):
    raw, out = tmp_path_factory.mktemp("sentiment-raw"), tmp_path_factory.mktemp("sentiment-bin")
    rng = random.Random(0)
    for split, count in (("train", 400), ("valid", 101)):
        (raw / split).mkdir()
        write_sentiment(raw / split, count, rng)
    for field in ("input0", "label"):
        run_cli("fairseq-preprocess", "--only-source", "--trainpref", raw / "train" / field,
                "--validpref", raw / "valid" / field, "--destdir", out / field, "--workers", 1)
    return out


def valid_accuracy(output):
    return re.findall(r"valid on 'valid' subset .*?accuracy ([\d.]+)", output)


@pytest.mark.slow
@pytest.mark.parametrize("criterion", [["mixup_cross_entropy", "--mixup-alpha", 0.4],
                                       ["dip_cross_entropy", "--dip-pool-size", 200, "--dip-train-samples", 2,
                                        "--dip-eval-samples", 4]])
def test_sentence_prediction_trains_and_reloads(sentiment_bin, tmp_path, criterion):
    result = run_cli("fairseq-train", sentiment_bin, "--user-dir", USER_DIR, "--task", "sentence_prediction",
                     *TINY, "--criterion", *criterion, "--max-epoch", 2, "--save-dir", tmp_path, *FAST)
    in_training = valid_accuracy(result.stdout + result.stderr)[-1]
    result = run_cli("fairseq-validate", sentiment_bin, "--user-dir", USER_DIR, "--task", "sentence_prediction",
                     "--path", tmp_path / "checkpoint_last.pt", "--batch-size", 17, "--num-workers", 0,
                     "--criterion", criterion[0])  # sentence_prediction reads the criterion's head name
    assert valid_accuracy(result.stdout + result.stderr) == [in_training]
    assert float(in_training) > 50
