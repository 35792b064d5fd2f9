"""--lr-scheduler inverse_epoch: lr / (1 + decay * (epoch - 1)) at the start of every epoch, held through it."""

import re

import pytest
import torch

from fairseq.optim import FairseqOptimizer

import fairseq_plugins  # noqa: F401  (registers the scheduler)
from fairseq_plugins.errors import ConfigError
from fairseq_plugins.lr_schedulers.inverse_epoch import InverseEpochConfig, InverseEpochSchedule


class SGD(FairseqOptimizer):
    def __init__(self, params):
        super().__init__(None)
        self._optimizer = torch.optim.SGD(params, lr=1.0)


def test_rate_of_each_epoch():
    optimizer = SGD([torch.nn.Parameter(torch.zeros(1))])
    schedule = InverseEpochSchedule(InverseEpochConfig(lr_decay_per_epoch=0.05, lr=[1e-3]), optimizer)
    for epoch, expected in ((1, 1e-3), (2, 1e-3 / 1.05), (21, 1e-3 / 2)):
        assert schedule.step_begin_epoch(epoch) == pytest.approx(expected)
        assert schedule.step_update(epoch * 10) == pytest.approx(expected)  # held through the epoch


def test_negative_decay_is_refused():
    with pytest.raises(ConfigError, match=re.escape("--lr-decay-per-epoch must be >= 0 (got -1)")):
        InverseEpochSchedule(InverseEpochConfig(lr_decay_per_epoch=-1, lr=[1e-3]), None)
