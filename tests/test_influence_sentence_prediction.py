"""Turn-over dropout on fairseq's sentence_prediction task: turnover_transformer_classifier trained with
turnover_cross_entropy, then fairseq-plugins-influence (whose pairs repeat the token input, since the
transformer's residual streams bypass the masks)."""

import random

import numpy as np
import pytest
import torch

from conftest import USER_DIR, build_through_namespace_api, run_cli
from fairseq_plugins.modules.turnover_dropout import turnover_layers, use_instances


def write_split(path, count, rng):
    """Sentences with more 'good' than 'bad' are pos, else neg."""
    sentences, labels = [], []
    for _ in range(count):
        good, bad = rng.randint(0, 3), rng.randint(0, 3)
        good += good == bad
        words = rng.choices(["the", "film", "was", "plot", "very"], k=rng.randint(1, 5)) + ["good"] * good + ["bad"] * bad
        rng.shuffle(words)
        sentences.append(" ".join(words))
        labels.append("pos" if good > bad else "neg")
    path.mkdir()
    (path / "input0").write_text("\n".join(sentences) + "\n")
    (path / "label").write_text("\n".join(labels) + "\n")


def sentence_data(tmp_path):
    """300 training and 37 validation sentences, binarized for sentence_prediction under tmp_path/bin."""
    rng = random.Random(0)
    raw, data = tmp_path / "raw", tmp_path / "bin"
    raw.mkdir()
    write_split(raw / "train", 300, rng)
    write_split(raw / "valid", 37, rng)
    for field in ("input0", "label"):
        run_cli("fairseq-preprocess", "--only-source", "--trainpref", raw / "train" / field, "--validpref",
                raw / "valid" / field, "--destdir", data / field, "--workers", 1)
    return data


@pytest.mark.slow
def test_influence_of_a_sentence_classifier(tmp_path):
    data, save_dir = sentence_data(tmp_path), tmp_path / "checkpoints"
    run_cli("fairseq-train", data, "--user-dir", USER_DIR, "--task", "sentence_prediction", "--num-classes", 2,
            "--arch", "turnover_transformer_classifier", "--encoder-layers", 2, "--encoder-embed-dim", 128,
            "--encoder-ffn-embed-dim", 256, "--encoder-attention-heads", 4, "--max-positions", 32,
            "--criterion", "turnover_cross_entropy", "--optimizer", "adam", "--lr", "1e-3", "--batch-size", 32,
            "--max-epoch", 3, "--save-dir", save_dir, "--no-epoch-checkpoints", "--num-workers", 0,
            "--no-progress-bar", "--log-format", "simple")
    out = tmp_path / "influence"
    run_cli("fairseq-plugins-influence", data, "--user-dir", USER_DIR, "--path", save_dir / "checkpoint_last.pt",
            "--valid-subset", "valid", "--out", out, "--pairs-per-batch", 1000, "--no-progress-bar")
    matrix = np.load(out / "influence.npy")
    assert matrix.shape == (37, 300) and np.isfinite(matrix).all() and np.abs(matrix).max() > 0

    from fairseq import checkpoint_utils

    models, _, task = checkpoint_utils.load_model_ensemble_and_task([str(save_dir / "checkpoint_last.pt")],
                                                                    arg_overrides={"data": str(data)})
    model = models[0].eval()
    assert len(turnover_layers(model)) == 2
    task.load_dataset("valid")
    valid = task.dataset("valid")
    for t, j in ((0, 0), (36, 299), (5, 123)):
        sample = valid.collater([valid[t]])
        losses = []
        for flip in (True, False):
            with use_instances(model, torch.tensor([j]), flip=flip), torch.no_grad():
                logits, _ = model(**sample["net_input"])
                losses.append(torch.nn.functional.cross_entropy(logits, sample["target"].view(-1)))
        assert abs(float(losses[0] - losses[1]) - matrix[t, j]) < 1e-4


@pytest.mark.parametrize("arch", ["transformer_classifier", "turnover_transformer_classifier"])
def test_sentence_classifiers_build_through_the_namespace_api(tmp_path, arch):
    """Scripts and hub-style loading build from ``options.parse_args_and_arch`` + ``task.build_model(args)``."""
    for field, words in (("input0", ["good", "bad", "film"]), ("label", ["pos", "neg"])):
        (tmp_path / field).mkdir()
        (tmp_path / field / "dict.txt").write_text("".join(f"{word} 1\n" for word in words))
    _, model = build_through_namespace_api(tmp_path, "sentence_prediction", arch, "--num-classes", 2,
                                              "--max-positions", 32, "--criterion", "sentence_prediction")
    layers = len(model.encoder.layers)
    assert layers > 0 and len(turnover_layers(model)) == (layers if arch.startswith("turnover") else 0)
