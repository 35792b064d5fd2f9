"""Percentages are ratios of sums over a split, however fairseq groups its batches."""

import pytest
from fairseq.logging import metrics

from fairseq_plugins.percentages import log_percentages

F1 = {"f1": (("tp", "tp"), ("predicted", "gold"))}


def logged(batches_per_reduce, percentages):
    with metrics.aggregate(new_root=True) as aggregated:
        for batches in batches_per_reduce:
            log_percentages(batches, percentages)
        return aggregated.get_smoothed_values()


def test_a_percentage_over_batches_is_the_ratio_of_their_sums():
    batches = [{"tp": 1, "predicted": 1, "gold": 1}, {"tp": 0, "predicted": 3, "gold": 1}]
    # 2 * 1 / (4 + 2): not the mean of the batches' F1s (100 and 0)
    assert logged([batches], F1)["f1"] == pytest.approx(100 / 3, abs=0.01)
    # reduced batch by batch (log intervals, workers), fairseq's weighted mean gives the same
    assert logged([[batch] for batch in batches], F1)["f1"] == pytest.approx(100 / 3, abs=0.01)


def test_a_percentage_without_a_denominator_is_not_logged():
    assert "f1" not in logged([[{"tp": 0, "predicted": 0, "gold": 0}]], F1)
