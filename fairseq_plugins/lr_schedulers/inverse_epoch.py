"""``--lr-scheduler inverse_epoch``: the learning rate of epoch ``e`` (fairseq counts from 1) is

    lr_e = lr / (1 + decay * (e - 1))          (--lr-decay-per-epoch decay, 0.05 by default)

Ouchi et al.'s span NER schedule (Adam 1e-3 decayed as lr / (1 + 0.05 epoch), their epochs counted
from 0), which none of fairseq's schedulers gives. The rate is set at the start of every epoch and
held through it.
"""

from dataclasses import dataclass
from typing import List

from omegaconf import II

from fairseq.dataclass import FairseqDataclass
from fairseq.optim.lr_scheduler import FairseqLRScheduler, register_lr_scheduler

from fairseq_plugins.options import bounded_field, check_options


@dataclass
class InverseEpochConfig(FairseqDataclass):
    lr_decay_per_epoch: float = bounded_field(0.05, ">= 0", "the rate of epoch e is lr / (1 + this * (e - 1))")
    lr: List[float] = II("optimization.lr")


@register_lr_scheduler("inverse_epoch", dataclass=InverseEpochConfig)
class InverseEpochSchedule(FairseqLRScheduler):
    def __init__(self, cfg, optimizer):
        check_options(cfg, InverseEpochConfig)
        super().__init__(cfg, optimizer)

    def step_begin_epoch(self, epoch):
        self.optimizer.set_lr(self.cfg.lr[0] / (1 + self.cfg.lr_decay_per_epoch * (epoch - 1)))
        return self.optimizer.get_lr()

    def step_update(self, num_updates):
        return self.optimizer.get_lr()
