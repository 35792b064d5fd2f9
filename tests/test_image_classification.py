"""The image_classification task and the image_mlp / image_cnn models, through fairseq's CLIs and API.

Readers (IDX plain and gzip, npz, sklearn digits), the batch layout other methods rely on
(``id``, ``net_input.images``, ``target``), training with fairseq's ``cross_entropy`` and ours,
accuracy in fairseq-validate, and one-line errors for bad data and flags.
"""

import gzip
import re
import struct

import numpy as np
import pytest
import torch

from conftest import USER_DIR, build_through_namespace_api, one_line_error, run_cli
from fairseq_plugins.errors import ConfigError
from fairseq_plugins.models.image_classifiers import ImageClassifier, ImageClassifierConfig
from fairseq_plugins.tasks.image_classification import ImageClassificationConfig, ImageClassificationTask, read_idx

FAST = ["--optimizer", "adam", "--lr", "1e-3", "--batch-size", 64, "--num-workers", 0, "--no-progress-bar",
        "--log-format", "simple", "--no-epoch-checkpoints"]


def write_idx(path, array):
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", size) for size in array.shape)
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "wb") as file:
        file.write(header + array.astype(np.uint8).tobytes())


def make_task(data, data_format="auto", valid_size=5000):
    cfg = ImageClassificationConfig(data=str(data), data_format=data_format, valid_size=valid_size, seed=3)
    return ImageClassificationTask.setup_task(cfg)


@pytest.fixture
def idx_dir(tmp_path):
    rng = np.random.default_rng(0)
    for prefix, count in (("train", 40), ("t10k", 12)):
        write_idx(str(tmp_path / f"{prefix}-images-idx3-ubyte.gz"), rng.integers(0, 256, (count, 6, 5)))
        write_idx(str(tmp_path / f"{prefix}-labels-idx1-ubyte"), np.arange(count) % 4)  # one plain, one gzip
    return tmp_path


def test_idx_reader_round_trips_plain_and_gzip(tmp_path):
    array = np.random.default_rng(1).integers(0, 256, (3, 4, 5)).astype(np.uint8)
    for name in ("a-idx3-ubyte", "a-idx3-ubyte.gz"):
        write_idx(str(tmp_path / name), array)
        assert np.array_equal(read_idx(str(tmp_path / name)), array)


def test_idx_splits_and_batch_layout(idx_dir):
    task = make_task(idx_dir, valid_size=10)
    assert task.image_shape == (1, 6, 5) and task.num_classes == 4
    sizes = {split: len(task.load_dataset(split)) for split in ("train", "valid", "test")}
    assert sizes == {"train": 30, "valid": 10, "test": 12}
    dataset = task.dataset("valid")
    batch = dataset.collater([dataset[i] for i in (4, 7)])
    assert batch["id"].tolist() == [4, 7]
    assert set(batch["net_input"]) == {"images"}
    images = batch["net_input"]["images"]
    assert images.shape == (2, 1, 6, 5) and images.dtype == torch.float32 and 0 <= images.min() and images.max() <= 1
    assert batch["target"].tolist() == [task.splits["valid"][1][4].item(), task.splits["valid"][1][7].item()]
    # train batches: a new permutation each epoch, the same one for the same epoch and seed
    train = task.dataset("train")
    orders = []
    for epoch in (1, 2, 1):
        train.set_epoch(epoch)
        orders.append(train.ordered_indices().tolist())
    assert orders[0] == orders[2] != orders[1] and sorted(orders[0]) == list(range(30))


def test_npz_images_with_and_without_channels(tmp_path):
    rng = np.random.default_rng(2)
    np.savez(tmp_path / "train.npz", images=rng.integers(0, 256, (20, 7, 7)).astype(np.uint8), labels=np.arange(20) % 3)
    np.savez(tmp_path / "valid.npz", images=rng.integers(0, 256, (5, 7, 7)).astype(np.uint8), labels=np.arange(5) % 3)
    task = make_task(tmp_path)
    assert task.image_shape == (1, 7, 7) and set(task.splits) == {"train", "valid"}
    for split, count in (("train", 20), ("valid", 6)):
        np.savez(tmp_path / f"{split}.npz", images=rng.random((count, 3, 4, 4)), labels=np.arange(count) % 2)
    task = make_task(tmp_path, "npz")
    assert task.image_shape == (3, 4, 4) and task.num_classes == 2
    assert task.splits["valid"][0].dtype == torch.float32


def test_sklearn_digits_split():
    task = make_task(".", "sklearn_digits")
    assert {split: len(labels) for split, (_, labels) in task.splits.items()} == {"train": 1257, "valid": 270, "test": 270}
    assert task.image_shape == (1, 8, 8) and task.num_classes == 10
    assert 0 <= task.splits["train"][0].min() and task.splits["train"][0].max() == 1


@pytest.mark.parametrize("setup, message", [
    (lambda tmp: make_task(tmp, "csv"), "--data-format must be one of auto, idx, npz, sklearn_digits (got 'csv')"),
    (lambda tmp: make_task(tmp), "--data-format auto: "),
    (lambda tmp: make_task(tmp, "npz"), "train.npz does not exist"),
    (lambda tmp: make_task(tmp, "idx"), "has neither train-images-idx3-ubyte nor train-images-idx3-ubyte.gz"),
])
def test_bad_data_is_one_clear_error(tmp_path, setup, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        setup(tmp_path)


def test_npz_with_bad_arrays(tmp_path):
    np.savez(tmp_path / "train.npz", pixels=np.zeros((2, 3, 3)), labels=np.zeros(2, dtype=int))
    np.savez(tmp_path / "valid.npz", images=np.zeros((2, 3, 3)), labels=np.zeros(2, dtype=int))
    with pytest.raises(ConfigError, match="lacks the array"):
        make_task(tmp_path)
    np.savez(tmp_path / "train.npz", images=np.zeros((2, 3, 3)), labels=np.zeros(3, dtype=int))
    with pytest.raises(ConfigError, match=re.escape("labels must have shape (2,)")):
        make_task(tmp_path)


def test_train_and_validate_report_accuracy(tmp_path, criterion="cross_entropy"):
    """With fairseq's own cross_entropy, the task adds accuracy: fairseq-train and fairseq-validate agree.

    (Our criteria log it themselves: test_dip_end_to_end.py, and the CNN test below.)"""
    result = run_cli("fairseq-train", ".", "--user-dir", USER_DIR, "--task", "image_classification",
                     "--data-format", "sklearn_digits", "--arch", "image_mlp", "--hidden-dim", 64,
                     "--criterion", criterion, "--max-epoch", 2, "--save-dir", tmp_path, *FAST, cwd=tmp_path)
    in_training = re.findall(r"valid on 'valid' subset .*?accuracy ([\d.]+)", result.stdout + result.stderr)[-1]
    result = run_cli("fairseq-validate", ".", "--user-dir", USER_DIR, "--task", "image_classification",
                     "--path", tmp_path / "checkpoint_last.pt", "--batch-size", 100, "--num-workers", 0, cwd=tmp_path)
    reloaded = re.findall(r"valid on 'valid' subset .*?accuracy ([\d.]+)", result.stdout + result.stderr)
    assert reloaded == [in_training] and float(in_training) > 30  # 10 classes: well above chance


def test_cnn_trains_on_idx_files(idx_dir, tmp_path):
    result = run_cli("fairseq-train", idx_dir, "--user-dir", USER_DIR, "--task", "image_classification",
                     "--valid-size", 10, "--arch", "image_cnn", "--conv-channels", "4,8", "--hidden-dim", 16,
                     "--criterion", "classification_cross_entropy", "--max-epoch", 1, "--save-dir", tmp_path, *FAST)
    assert re.search(r"valid on 'valid' subset .*accuracy [\d.]+", result.stdout + result.stderr)
    state = torch.load(tmp_path / "checkpoint_last.pt")["model"]
    assert state["encoder.0.weight"].shape == (4, 1, 3, 3)


@pytest.mark.parametrize("flags, message", [
    (dict(conv_channels="8,8,8,8"), "max-pool blocks shrink a 8x8 image to nothing"),
    (dict(conv_channels="8,x"), "--conv-channels '8,x': give positive integers"),
    (dict(dropout=1.5), "--dropout must be in [0, 1) (got 1.5)"),
    (dict(hidden_layers=-1), "--hidden-layers must be >= 0 (got -1)"),
])
def test_bad_model_flags(flags, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        ImageClassifier(ImageClassifierConfig(**flags), (1, 8, 8), 10)


def test_bad_flag_is_one_line_in_fairseq_train(tmp_path):
    result = run_cli("fairseq-train", ".", "--user-dir", USER_DIR, "--task", "image_classification",
                     "--data-format", "sklearn_digits", "--arch", "image_cnn", "--conv-channels", "8,8,8,8",
                     "--criterion", "classification_cross_entropy", "--save-dir", tmp_path, *FAST,
                     cwd=tmp_path, check=False)
    one_line_error(result, "--conv-channels 8,8,8,8: 4 max-pool blocks shrink a 8x8 image to nothing")


@pytest.mark.parametrize("arch, hidden_layers", [("image_mlp", 2), ("image_cnn", 1), ("turnover_image_mlp", 2),
                                                  ("turnover_image_cnn", 1)])
def test_presets_build_through_the_namespace_api(idx_dir, arch, hidden_layers):
    args, model = build_through_namespace_api(idx_dir, "image_classification", arch, "--criterion", "cross_entropy",
                                              "--valid-size", 8)
    assert args.hidden_layers == hidden_layers and sum(p.numel() for p in model.parameters()) > 0
