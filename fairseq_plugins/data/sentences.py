"""Datasets of whole sentences batched by length, and batches of a dataset in index order, on a device."""

import numpy as np

from fairseq import utils
from fairseq.data import FairseqDataset


def on_device(batch, device):
    """``batch`` with every tensor moved to ``device``: a batch a task collates for itself (instance
    sentences, the training memory) goes where fairseq's trainer puts its own batches and the model."""
    return utils.apply_to_sample(lambda tensor: tensor.to(device), batch)


def batches_in_index_order(dataset, batch_size):
    """Collated batches, every item once, in dataset-index order (nothing filtered, nothing shuffled),
    each with its ``id``."""
    for start in range(0, len(dataset), batch_size):
        yield dataset.collater([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])


class LengthOrderedSentences(FairseqDataset):
    """Sentences ordered by length, so that a batch pads little (span grids are T x L, arc scores
    T x T), with ties in a fresh random order every epoch when ``shuffle`` is set.

    Subclasses set ``sentences`` (what the reader gave, each with its first ``line``), ``sizes``
    (tokens of each sentence, a numpy array), ``shuffle`` and ``seed``.
    """

    epoch = 1

    def __len__(self):
        return len(self.sentences)

    def num_tokens(self, index):
        return int(self.sizes[index])

    def size(self, index):
        return int(self.sizes[index])

    @property
    def can_reuse_epoch_itr_across_epochs(self):
        return not self.shuffle

    def set_epoch(self, epoch):
        self.epoch = epoch

    def ordered_indices(self):
        order = np.random.default_rng([self.seed, self.epoch]).permutation(len(self)) if self.shuffle else np.arange(len(self))
        return order[np.argsort(self.sizes[order], kind="stable")]
