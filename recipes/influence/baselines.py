"""Rankings of training instances that the turn-over dropout study compares against.

Shared by ``rank.py`` and ``bench/influence_throughput.py``: a fairseq image-classification
checkpoint loaded as a plain module, the npz split as tensors, captum's TracInCP on the
checkpoints of one training run, and the full network's per-instance loss.
"""

import os

import numpy as np
import torch
from torch.utils.data import TensorDataset


def load_split(data_dir, split):
    """(images (N, C, H, W) float, labels (N,)) as the image_classification task feeds them."""
    with np.load(os.path.join(data_dir, f"{split}.npz")) as arrays:
        images, labels = arrays["images"], arrays["labels"]
    images = torch.from_numpy(images if images.ndim == 4 else images[:, None])
    images = images.float().div(255) if images.dtype == torch.uint8 else images.float()
    return images, torch.from_numpy(labels.astype(np.int64))


class Logits(torch.nn.Module):
    """A package classifier as captum sees a model: images in, logits out (no ``(logits, extra)`` pair)."""

    def __init__(self, classifier):
        super().__init__()
        self.classifier = classifier

    def forward(self, images):
        return self.classifier(images)[0]


def load_model(checkpoint, data_dir):
    from fairseq_plugins.cli.checkpoints import load_checkpoint

    model, _, _ = load_checkpoint(checkpoint, data=data_dir)
    return Logits(model)  # the full network (eval mode): no instance masks outside training


def load_fairseq_weights(model, path):
    model.classifier.load_state_dict(torch.load(path, map_location="cpu", weights_only=False)["model"])
    return 1.0  # constant learning rate (Adam, no schedule): TracInCP's per-checkpoint weight


def tracincp(model, checkpoints, images, labels, batch_size=256):
    """captum's TracInCP over ``checkpoints`` (fairseq .pt files of ``model``'s run), on all parameters,
    with batched per-example gradients."""
    from captum.influence import TracInCP

    return TracInCP(
        model, TensorDataset(images, labels), checkpoints, checkpoints_load_func=load_fairseq_weights,
        loss_fn=torch.nn.CrossEntropyLoss(reduction="sum"), batch_size=batch_size, sample_wise_grads_per_batch=True,
    )


@torch.no_grad()
def losses(model, images, labels, batch_size=1024):
    return torch.cat([
        torch.nn.functional.cross_entropy(model(images[i : i + batch_size]), labels[i : i + batch_size], reduction="none")
        for i in range(0, len(labels), batch_size)
    ]).numpy()
