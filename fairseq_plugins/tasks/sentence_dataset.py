"""Datasets of whole sentences batched by length: the base of span NER's and dependency parsing's."""

import numpy as np

from fairseq import utils
from fairseq.data import FairseqDataset


def on_device(batch, device):
    """``batch`` with every tensor moved to ``device``: a batch a task collates for itself (instance
    sentences, the training memory) goes where fairseq's trainer puts its own batches and the model."""
    return utils.apply_to_sample(lambda tensor: tensor.to(device), batch)


class LengthOrderedSentences(FairseqDataset):
    """Sentences ordered by length, so that a batch pads little (span grids are T x L, arc scores
    T x T), with ties in a fresh random order every epoch when ``shuffle`` is set.

    Subclasses set ``sizes`` (tokens of each sentence, a numpy array), ``shuffle`` and ``seed``.
    """

    epoch = 1

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
