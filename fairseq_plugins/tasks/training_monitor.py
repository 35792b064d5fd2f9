"""Training-stability monitoring for any architecture: ``monitored_<task>`` tasks.

fairseq has no training callbacks; its sanctioned seams are the task's
``train_step`` (once per micro-batch) and ``optimizer_step`` (once per update, with
the final, all-reduced and clipped gradients in place). ``monitored_language_modeling``
and ``monitored_translation`` are fairseq's tasks with those two hooks and these flags:

- ``--detect-loss-spikes``: feed each update's training loss (the ``loss`` of the log:
  base 2, per ``sample_size`` unit, summed over micro-batches and workers) to
  ``modules.spike_monitor.LossSpikeDetector`` (``--spike-factor``, ``--spike-window``,
  ``--spike-min-history``); spikes are counted in the metric ``loss_spikes`` (a sum over
  the log interval and over the epoch) and each is logged with its loss and the median;
- ``--skip-spike-updates``: an update whose loss spiked is not applied (no optimizer
  step, so no moment update either);
- ``--layer-grad-norm-interval N``: every N updates, log the gradient norm of every layer
  of every ``layers`` stack of the model (``encoder.layers``, ``decoder.layers``). These
  are the gradients the optimizer applies, i.e. after ``--clip-norm``, which scales every
  layer alike, and, with ``--fp16``, after the loss scale is divided out.

With none of them set the hooks call fairseq's straight away: no extra work, no sync.
The detector's history restarts when training resumes (fairseq's trainer does not restore
task state); the ``loss_spikes`` sums are restored with fairseq's other metrics.
"""

import logging
import math
from dataclasses import dataclass, field

import torch
from torch import nn

from fairseq import metrics
from fairseq.dataclass import FairseqDataclass

from fairseq_plugins.errors import ConfigError
from fairseq_plugins.modules.spike_monitor import LossSpikeDetector, layer_grad_norms
from fairseq_plugins.options import bounded_field, check_options
from fairseq_plugins.tasks.task_extension import TaskExtension, register_extension, unwrapped_model

logger = logging.getLogger(__name__)

MONITORED_TASKS = ("language_modeling", "translation", "sentence_prediction", "image_classification")


@dataclass
class TrainingMonitorConfig(FairseqDataclass):
    detect_loss_spikes: bool = field(
        default=False, metadata={"help": "count updates whose training loss exceeds --spike-factor x its running median"}
    )
    spike_factor: float = field(default=2.0, metadata={"help": "a loss above this multiple of the median is a spike (> 1)"})
    spike_window: int = field(default=100, metadata={"help": "the median is over this many recent non-spike losses"})
    spike_min_history: int = field(
        default=10, metadata={"help": "no spike is flagged before this many losses are known (nan/inf always are)"}
    )
    skip_spike_updates: bool = field(
        default=False, metadata={"help": "do not apply an update whose loss spiked (needs --detect-loss-spikes)"}
    )
    layer_grad_norm_interval: int = bounded_field(0, ">= 0", "log the gradient norm of every layer every N updates (0: never)")


def layer_stacks(model: nn.Module):
    """``(name, ModuleList)`` of every module list called ``layers`` in ``model``, outermost first."""
    stacks = [(name, module) for name, module in model.named_modules()
              if name.rsplit(".", 1)[-1] == "layers" and isinstance(module, nn.ModuleList)]
    return [(name, stack) for name, stack in stacks if not any(name.startswith(outer + ".") for outer, _ in stacks)]


class TrainingMonitorMixin:
    """The hooks; mixed in before a fairseq task (see ``tasks/task_extension.py``)."""

    def _monitor_setup(self):
        if hasattr(self, "_spike_detector"):
            return
        # legacy tasks (language_modeling) keep their options in ``args``, the others in ``cfg``
        cfg = self.monitor_cfg = self.cfg if self.cfg is not None else self.args
        if cfg.skip_spike_updates and not cfg.detect_loss_spikes:
            raise ConfigError("--skip-spike-updates needs --detect-loss-spikes")
        check_options(cfg, TrainingMonitorConfig)
        self._spike_detector = None
        if cfg.detect_loss_spikes:
            try:
                self._spike_detector = LossSpikeDetector(cfg.spike_factor, cfg.spike_window, cfg.spike_min_history)
            except ValueError as error:
                raise ConfigError(str(error)) from None
        self._update_loss = []  # this update's (loss, sample_size) per micro-batch, tensors: no sync
        self._stacks = None

    def build_model(self, cfg, from_checkpoint=False):
        model = super().build_model(cfg, from_checkpoint)
        self._monitor_setup()
        if self.monitor_cfg.layer_grad_norm_interval and not layer_stacks(model):
            raise ConfigError("--layer-grad-norm-interval: the model has no module list named 'layers'")
        return model

    def train_step(self, sample, model, criterion, optimizer, update_num, ignore_grad=False):
        if self._spike_detector is not None and not any(p.grad is not None for p in model.parameters()):
            # The update's first micro-batch (fairseq zeroes gradients to None before each update):
            # drop what an update that never reached optimizer_step collected (an fp16 overflow).
            self._update_loss = []
        loss, sample_size, logging_output = super().train_step(
            sample, model, criterion, optimizer, update_num, ignore_grad
        )
        if self._spike_detector is not None and not ignore_grad:
            self._update_loss.append((loss.detach().float(), sample_size))
        return loss, sample_size, logging_output

    def optimizer_step(self, optimizer, model, update_num):
        interval = self.monitor_cfg.layer_grad_norm_interval
        if interval and (update_num + 1) % interval == 0:
            self._log_layer_grad_norms(model, optimizer, update_num + 1)
        if self._spike_detector is not None and self._update_is_spike(model, update_num + 1):
            if self.monitor_cfg.skip_spike_updates:
                optimizer.zero_grad()
                return
        super().optimizer_step(optimizer, model, update_num)

    def _update_is_spike(self, model, update):
        """Every rank reaches the all-reduce, also one that only had dummy batches (``ignore_grad``)
        at an epoch's end, and takes the same decision from the summed loss."""
        losses, self._update_loss = self._update_loss, []
        device = next(model.parameters()).device
        totals = torch.zeros(2, dtype=torch.float64, device=device)
        for loss, size in losses:
            totals += torch.stack([loss.reshape(()).to(totals), totals.new_tensor(float(size))])
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(totals)
        loss_sum, sample_size = totals.tolist()
        if sample_size == 0:
            return False
        loss = loss_sum / sample_size / math.log(2)
        detector = self._spike_detector
        median = detector.median
        spike = detector.update(loss)
        metrics.log_scalar_sum("loss_spikes", int(spike), priority=900, round=0)
        if spike:
            action = "; update skipped" if self.monitor_cfg.skip_spike_updates else ""
            logger.warning(
                f"loss spike at update {update}: loss {loss:.3f} > {detector.factor} x median "
                f"{median if median is None else round(median, 3)}{action} ({detector.spikes} so far)"
            )
        return spike

    def _log_layer_grad_norms(self, model, optimizer, update):
        if self._stacks is None:
            self._stacks = layer_stacks(unwrapped_model(model))
        # fairseq's fp16 optimizers apply the loss-scale division and the clipping lazily: the
        # gradients they will apply are the model's times this factor (1 for the others).
        factor = float(getattr(optimizer, "_multiply_factor", 1.0))
        for name, stack in self._stacks:
            norms = " ".join(f"{factor * norm:.4g}" for norm in layer_grad_norms(list(stack)))
            logger.info(f"layer grad norms | update {update} | {name} | {norms}")


MONITOR = TaskExtension("monitored", TrainingMonitorMixin, TrainingMonitorConfig, MONITORED_TASKS)
register_extension(MONITOR)
