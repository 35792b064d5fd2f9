"""Percentages logged from counts, the one way every criterion and task of the package logs them.

A percentage of a split is a ratio of sums, not a mean of per-batch ratios: each batch's
logging output carries counts, and ``log_percentages`` logs ``100 * sum(numerator) /
sum(denominator)`` weighted by the denominator, so fairseq's weighted average over batches, log
intervals and workers is that ratio exactly. F1 is ``2 tp / (predicted + gold)``: a numerator or
denominator may be several count keys, summed.
"""

from fairseq import metrics


def count(logging_outputs, keys):
    keys = (keys,) if isinstance(keys, str) else keys
    return sum(float(log.get(key, 0)) for log in logging_outputs for key in keys)


def log_percentages(logging_outputs, percentages):
    """``percentages``: ``{metric: (numerator keys, denominator keys)}``; a metric whose denominator is 0 is not logged."""
    for metric, (numerator, denominator) in percentages.items():
        total = count(logging_outputs, denominator)
        if total:
            metrics.log_scalar(metric, 100.0 * count(logging_outputs, numerator) / total, total, round=2)


# Classifiers' logging outputs: correct predictions and examples of the batch.
ACCURACY = {"accuracy": ("ncorrect", "nexamples")}
