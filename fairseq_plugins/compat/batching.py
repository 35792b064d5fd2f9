"""Batching: the dropped last batch and the numpy 2 removals fairseq's data code calls."""

import functools
import sys
import types

import numpy as np

def keep_last_batch():
    """No sentence is dropped from generation or validation: fairseq-fixed discarded the last batch
    when its size was not a multiple of ``--required-batch-size-multiple`` (default 8), e.g. 4 of 100
    sentences. Upstream fairseq keeps it."""
    from fairseq.data import data_utils

    batch_by_size = data_utils.batch_by_size
    if getattr(batch_by_size, "keeps_last_batch", False):
        return

    @functools.wraps(batch_by_size)
    def batch_by_size_keeping_last(indices, *args, **kwargs):
        if not isinstance(indices, np.ndarray):
            indices = np.fromiter(indices, dtype=np.int64, count=-1)
        batches = batch_by_size(indices, *args, **kwargs)
        # Batches are consecutive slices of ``indices``; anything past the last
        # one is the tail fairseq-fixed discarded.
        covered = sum(len(batch) for batch in batches)
        if kwargs.get("fixed_shapes") is None and covered < len(indices):
            batches.append(indices[covered:])
        return batches

    batch_by_size_keeping_last.keeps_last_batch = True
    data_utils.batch_by_size = batch_by_size_keeping_last


def get_buckets(sizes, num_buckets):
    """fairseq's ``data_utils.get_buckets`` with numpy >= 1.22's ``method=`` keyword."""
    return np.unique(
        np.percentile(sizes, np.linspace(0, 100, num_buckets + 1), method="lower")[1:]
    )


def numpy2_shims():
    """Language-model ``--sample-break-mode eos`` and ``--num-batch-buckets`` work on numpy 2:
    ``np.compat`` (removed in numpy 2) and ``np.percentile(interpolation=)`` (removed in 2.4)."""
    if "compat" not in vars(np):
        # fairseq only uses ``np.compat.long`` (``int`` on Python 3).
        np.compat = types.SimpleNamespace(long=int)
    from fairseq.data import bucket_pad_length_dataset, data_utils

    for module in (data_utils, bucket_pad_length_dataset):
        module.get_buckets = get_buckets
    audio = sys.modules.get("fairseq.data.audio.raw_audio_dataset")
    if audio is not None:
        audio.get_buckets = get_buckets
