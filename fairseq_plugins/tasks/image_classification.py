"""``image_classification``: classify small images held in memory (Fashion-MNIST, sklearn digits, npz).

Data (``DATA`` is the task's positional argument), chosen by ``--data-format``:

- ``idx``: a directory with the four MNIST-layout IDX files (``train-images-idx3-ubyte``,
  ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each
  plain or ``.gz``), e.g. ``/usr/share/datasets/fashion-mnist``. ``t10k`` is the ``test`` split;
  ``valid`` is ``--valid-size`` training images held out by a fixed permutation (seed 0, the same
  for every ``--seed``), ``train`` the rest.
- ``npz``: a directory with ``train.npz``, ``valid.npz`` and ``test.npz`` (``test`` optional), each
  holding ``images`` (N x H x W or N x C x H x W, uint8 or float) and ``labels`` (N,) integers.
- ``sklearn_digits``: scikit-learn's 1,797 8x8 digits, split by a fixed permutation (seed 0) into
  1,257 train / 270 valid / 270 test. Nothing is read from ``DATA``, but fairseq-train lists it,
  so it must be an existing directory (e.g. ``.``).
- ``auto`` (default): ``npz`` or ``idx``, from the files found in ``DATA``.

Pixels: uint8 images are divided by 255, sklearn digits (0..16) by 16; float images are used as
they are. Every split is loaded into memory at task setup (Fashion-MNIST: 55 MB as uint8), so the
model's input shape and the number of classes (largest training label + 1) are known before the
model is built.

Batches (what criteria and models receive; turn-over dropout relies on ``id``)::

    {"id": LongTensor (B,)            # index of each example in its split, stable across epochs
     "net_input": {"images": FloatTensor (B, C, H, W)},
     "target": LongTensor (B,),
     "nsentences": B, "ntokens": B}

Training batches are a fresh permutation every epoch (seeded by ``--seed`` and the epoch); valid
and test batches keep the split's order. ``--batch-size`` (or ``--max-tokens``: an image counts
as one token) sets the batch size.

Accuracy: every criterion of this package logs ``accuracy`` (percent); for other criteria (e.g.
fairseq's ``cross_entropy``) this task adds it to validation, so fairseq-train's validation and
fairseq-validate always print it.
"""

import gzip
import logging
import math
import os
from dataclasses import dataclass, field

import numpy as np
import torch
from omegaconf import II

from fairseq.data import FairseqDataset
from fairseq.dataclass import FairseqDataclass
from fairseq.tasks import FairseqTask, register_task

from fairseq_plugins.errors import ConfigError
from fairseq_plugins.options import check_options, choice_field
from fairseq_plugins.percentages import ACCURACY, log_percentages

logger = logging.getLogger(__name__)

DATA_FORMATS = ("auto", "idx", "npz", "sklearn_digits")
SPLITS = ("train", "valid", "test")
IDX_FILES = {  # split -> (images, labels) file stems
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
DIGITS_HELD_OUT = 270  # sklearn digits: examples in valid and in test each
SPLIT_PERMUTATION_SEED = 0  # fixed, so the splits never depend on --seed


@dataclass
class ImageClassificationConfig(FairseqDataclass):
    data: str = field(default=".", metadata={"help": "data directory (see --data-format)"})
    data_format: str = choice_field("auto", DATA_FORMATS, "how DATA is read (see the task's docstring)")
    valid_size: int = field(
        default=5000,
        metadata={"help": "--data-format idx: training images held out as the valid split (fixed permutation)"},
    )
    seed: int = II("common.seed")


def read_idx(path):
    """An IDX array (MNIST layout: magic, dimensions, then the data; uint8 data only), plain or gzip."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as file:
        raw = file.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ConfigError(f"{path} is not an IDX file (bad magic number)")
    if raw[2] != 0x08:
        raise ConfigError(f"{path}: only unsigned-byte IDX data is supported (type code 0x08), got 0x{raw[2]:02x}")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != math.prod(shape):
        raise ConfigError(f"{path}: header says {shape} ({math.prod(shape)} values), file holds {data.size}")
    return data.reshape(shape).copy()  # a writable array, owned


def find_idx_file(directory, stem):
    for name in (stem, stem + ".gz"):
        if os.path.exists(os.path.join(directory, name)):
            return os.path.join(directory, name)
    raise ConfigError(f"--data-format idx: {directory} has neither {stem} nor {stem}.gz")


def held_out_split(count, held_out):
    """Fixed permutation of ``range(count)``: (kept indices, held-out indices), each sorted."""
    order = np.random.default_rng(SPLIT_PERMUTATION_SEED).permutation(count)
    return np.sort(order[held_out:]), np.sort(order[:held_out])


def load_idx(directory, valid_size):
    train_images, train_labels = (read_idx(find_idx_file(directory, stem)) for stem in IDX_FILES["train"])
    if not 0 < valid_size < len(train_labels):
        raise ConfigError(f"--valid-size must be between 1 and {len(train_labels) - 1} (the training images), got {valid_size}")
    train, valid = held_out_split(len(train_labels), valid_size)
    test_images, test_labels = (read_idx(find_idx_file(directory, stem)) for stem in IDX_FILES["test"])
    return {
        "train": (train_images[train], train_labels[train]),
        "valid": (train_images[valid], train_labels[valid]),
        "test": (test_images, test_labels),
    }


def load_npz(directory):
    splits = {}
    for split in SPLITS:
        path = os.path.join(directory, f"{split}.npz")
        if not os.path.exists(path):
            if split == "test":
                continue
            raise ConfigError(f"--data-format npz: {path} does not exist (need train.npz and valid.npz, test.npz optional)")
        with np.load(path) as arrays:
            missing = {"images", "labels"} - set(arrays.files)
            if missing:
                raise ConfigError(f"{path} lacks the array(s) {', '.join(sorted(missing))}; it holds {', '.join(arrays.files)}")
            splits[split] = (arrays["images"], arrays["labels"])
    return splits


def load_sklearn_digits():
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)  # pixel values are 0..16
    rest, test = held_out_split(len(images), DIGITS_HELD_OUT)
    train, valid = rest[DIGITS_HELD_OUT:], rest[:DIGITS_HELD_OUT]
    return {split: (images[idx], digits.target[idx]) for split, idx in (("train", train), ("valid", valid), ("test", test))}


def resolve_format(data, data_format):
    if data_format != "auto":
        return data_format
    if os.path.exists(os.path.join(data, "train.npz")):
        return "npz"
    if any(os.path.exists(os.path.join(data, IDX_FILES["train"][0] + ext)) for ext in ("", ".gz")):
        return "idx"
    raise ConfigError(
        f"--data-format auto: {data} holds neither train.npz nor {IDX_FILES['train'][0]}[.gz]; "
        f"give the right directory, or --data-format sklearn_digits"
    )


def as_image_tensor(images, labels, where):
    """(N, C, H, W) uint8 or float32 tensor and (N,) int64 labels, checked."""
    if images.ndim == 3:
        images = images[:, None]
    if images.ndim != 4:
        raise ConfigError(f"{where}: images must be N x H x W or N x C x H x W, got shape {images.shape}")
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) != len(images):
        raise ConfigError(f"{where}: labels must have shape ({len(images)},), got {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer) or (len(labels) and labels.min() < 0):
        raise ConfigError(f"{where}: labels must be non-negative integers, got dtype {labels.dtype}")
    if images.dtype != np.uint8:
        if not np.issubdtype(images.dtype, np.floating):
            raise ConfigError(f"{where}: images must be uint8 or float, got dtype {images.dtype}")
        images = images.astype(np.float32)
    return torch.from_numpy(np.ascontiguousarray(images)), torch.from_numpy(labels.astype(np.int64))


class ImageClassificationDataset(FairseqDataset):
    """Images and labels in memory; see the module docstring for the batch layout."""

    def __init__(self, images, labels, shuffle, seed):
        self.images, self.labels = images, labels
        self.shuffle, self.seed, self.epoch = shuffle, seed, 1
        self.sizes = np.ones(len(labels), dtype=np.int64)  # one "token" per image

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        return {"id": index, "image": self.images[index], "label": self.labels[index]}

    def collater(self, samples):
        if not samples:
            return {}
        images = torch.stack([s["image"] for s in samples])
        images = images.float().div_(255) if images.dtype == torch.uint8 else images
        return {
            "id": torch.tensor([s["id"] for s in samples]),
            "nsentences": len(samples),
            "ntokens": len(samples),
            "net_input": {"images": images},
            "target": torch.stack([s["label"] for s in samples]),
        }

    def num_tokens(self, index):
        return 1

    def size(self, index):
        return 1

    @property
    def can_reuse_epoch_itr_across_epochs(self):
        return not self.shuffle  # a training split needs a new permutation each epoch

    def set_epoch(self, epoch):
        self.epoch = epoch

    def ordered_indices(self):
        if not self.shuffle:
            return np.arange(len(self))
        return np.random.default_rng([self.seed, self.epoch]).permutation(len(self))


@register_task("image_classification", dataclass=ImageClassificationConfig)
class ImageClassificationTask(FairseqTask):
    def __init__(self, cfg, splits):
        super().__init__(cfg)
        self.splits = splits
        if "train" not in splits:  # set up from a checkpoint without its data: load_state_dict sets both
            self.image_shape = self.num_classes = None
            return
        train_images, train_labels = splits["train"]
        self.image_shape = tuple(train_images.shape[1:])  # (C, H, W)
        self.num_classes = int(train_labels.max()) + 1
        for split, (images, labels) in splits.items():
            if tuple(images.shape[1:]) != self.image_shape:
                raise ConfigError(f"{split} images have shape {tuple(images.shape[1:])}, train images {self.image_shape}")
            if len(labels) and int(labels.max()) >= self.num_classes:
                raise ConfigError(f"{split} has label {int(labels.max())}, above the largest training label {self.num_classes - 1}")

    @classmethod
    def setup_task(cls, cfg, from_checkpoint=False, **kwargs):
        check_options(cfg, ImageClassificationConfig)
        if from_checkpoint and cfg.data_format != "sklearn_digits" and not os.path.isdir(cfg.data):
            return cls(cfg, {})  # predicting: the checkpoint carries the image shape and the classes
        data_format = resolve_format(cfg.data, cfg.data_format)
        if data_format == "idx":
            raw = load_idx(cfg.data, cfg.valid_size)
        elif data_format == "npz":
            raw = load_npz(cfg.data)
        else:
            raw = load_sklearn_digits()
        splits = {split: as_image_tensor(*arrays, f"{data_format} {split}") for split, arrays in raw.items()}
        logger.info(
            "%s: %s", data_format, ", ".join(f"{split} {len(labels)}" for split, (_, labels) in splits.items())
        )
        return cls(cfg, splits)

    def build_model(self, cfg, from_checkpoint=False):
        if self.image_shape is None:
            raise ConfigError(f"{self.cfg.data} does not exist, and this checkpoint was written before checkpoints "
                              "carried the image shape and classes: pass the data directory it was trained on")
        return super().build_model(cfg, from_checkpoint)

    def state_dict(self):
        """Saved in every checkpoint (``task_state``): what building the model needs, so that a
        checkpoint predicts without its data directory."""
        return {"image_shape": list(self.image_shape), "num_classes": self.num_classes}

    def load_state_dict(self, state):
        if "image_shape" in state and not self.splits:
            self.image_shape, self.num_classes = tuple(state["image_shape"]), state["num_classes"]

    def load_dataset(self, split, combine=False, **kwargs):
        if split not in self.splits:
            raise ConfigError(f"split {split}: this data has only {', '.join(self.splits)}")
        images, labels = self.splits[split]
        self.datasets[split] = ImageClassificationDataset(images, labels, shuffle=split == "train", seed=self.cfg.seed)
        return self.datasets[split]

    def valid_step(self, sample, model, criterion):
        loss, sample_size, logging_output = super().valid_step(sample, model, criterion)
        if "ncorrect" not in logging_output:  # e.g. fairseq's cross_entropy: add the accuracy
            with torch.no_grad():
                predictions = model(**sample["net_input"])[0].argmax(-1)
            logging_output["ncorrect"] = (predictions == sample["target"]).sum().item()
            logging_output["nexamples"] = sample["target"].numel()
            logging_output["accuracy_added_by_task"] = 1
        return loss, sample_size, logging_output

    def reduce_metrics(self, logging_outputs, criterion):
        super().reduce_metrics(logging_outputs, criterion)
        if logging_outputs and "accuracy_added_by_task" in logging_outputs[0]:
            log_percentages(logging_outputs, ACCURACY)

    def max_positions(self):
        return None

    @property
    def source_dictionary(self):
        return None

    @property
    def target_dictionary(self):
        return None

