"""Finetuning lottery tickets with fairseq-train, for any architecture: ``ticket_<task>`` tasks.

``ticket_sentence_prediction``, ``ticket_image_classification`` and ``ticket_translation`` are
fairseq's (and this package's) tasks with one hook, ``train_step`` (per micro-batch: the
regulariser goes into the loss, pruned gradients are zeroed after backward, before fairseq
unscales, clips and steps: a seam every precision mode and data parallelism pass through), and
these flags:

- ``--ticket-mask FILE``: ``{parameter name: bool tensor}`` (1 = kept). Pruned weights stay
  exactly 0 through every update: at the first update they are set to 0 in the model, in the
  copy the optimizer steps (the fp32 master weights of ``--fp16``, flat or not) and in that
  copy's optimizer state (Adam's moments, e.g. restored from a dense run), and their gradients
  are zeroed right after every micro-batch's backward, before fairseq clips and steps, so
  ``--clip-norm`` and the logged ``gnorm`` count only weights that exist. An Adam step of a weight
  with zero gradient and zero moments is 0, and so is decoupled weight decay of 0. The checkpoint
  stays a plain one of its architecture (same names, zeros in place).
- ``--ticket-penalty FILE`` (or ``--ticket-random-penalty P`` with ``--ticket-penalty-seed S``:
  ``l`` drawn over the model's prunable set, as RANDOM-LT does) and ``--ticket-tau T``: the
  diversity regulariser ``tau_t ||theta * l||_1`` with ``l`` from FILE and ``tau_t = T * lr_t / lr_max``
  (it decays with the LR schedule). It is added to every micro-batch's loss weighted by that
  micro-batch's ``sample_size``, so once fairseq has divided the summed gradient by the update's
  total ``sample_size`` (over micro-batches and workers) the update's gradient is
  ``grad(loss) / sample_size + tau_t * l * sign(theta)``: the regulariser of the per-``sample_size``
  loss, exactly so in fp32, ``--fp16``, ``--memory-efficient-fp16`` and under data parallelism,
  and clipped with the rest. Logged as ``ticket_l1`` (``||theta * l||_1``).
- ``--ticket-save-init FILE``: the model's state dict at the first update, i.e. after
  fairseq has restored the pretrained weights and initialised anything new (a classification
  head): the point tickets rewind to. Not overwritten once it exists.
- ``--bagging-fraction F`` (< 1) with ``--bagging-seed S``: train on a random fraction F of
  the ``train`` split (the bagging baseline of multi-ticket ensembles).

The mask and penalty files are read at the first update only, so evaluating a ticket checkpoint
(fairseq-validate, fairseq-generate) never needs them. Parameter names are the model's own, also
when the trainer hands the task a data-parallel wrapper. The computation lives in
``modules/pruning.py``; ``cli/tickets.py`` runs the whole procedure.
"""

import logging
import os
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import torch

from fairseq import metrics
from fairseq.data import BaseWrapperDataset
from fairseq.dataclass import FairseqDataclass
from fairseq.distributed import utils as distributed_utils
from fairseq.optim import FP16Optimizer

from fairseq_plugins.errors import ConfigError
from fairseq_plugins.modules.pruning import full_masks, penalty_l1, prunable_names, random_penalty
from fairseq_plugins.options import bounded_field, check_options
from fairseq_plugins.tasks.task_extension import TaskExtension, register_extension, unwrapped_model

logger = logging.getLogger(__name__)

TICKET_TASKS = ("sentence_prediction", "image_classification", "translation")
TICKET_PREFIX = "ticket_"


@dataclass
class TicketConfig(FairseqDataclass):
    ticket_mask: str = field(default="", metadata={"help": "file of {parameter: bool mask}; pruned weights are held at 0"})
    ticket_penalty: str = field(default="", metadata={"help": "file of {parameter: l}: adds tau_t * ||theta * l||_1 to the loss"})
    ticket_random_penalty: float = bounded_field(
        0.0, "[0, 1)", "RANDOM-LT: l ~ Bernoulli over the prunable set with P(l = 0) = this (0: off)"
    )
    ticket_penalty_seed: int = field(default=1, metadata={"help": "seed of the --ticket-random-penalty draw"})
    ticket_tau: float = bounded_field(0.0, ">= 0", "tau of the regulariser at the peak LR (it decays with the LR)")
    ticket_save_init: str = field(default="", metadata={"help": "save the model's state at the first update here (the rewind point)"})
    bagging_fraction: float = bounded_field(1.0, "(0, 1]", "train on this random fraction of the train split (bagging)")
    bagging_seed: int = field(default=1, metadata={"help": "seed of the --bagging-fraction subset"})


def load_tensor_file(path, flag):
    if not os.path.isfile(path):
        raise ConfigError(f"{flag} {path}: no such file")
    return torch.load(path, map_location="cpu", weights_only=True)


def peak_lr(optimizer):
    """The configured (peak) LR of a fairseq optimizer, dataclass-configured or legacy."""
    config = getattr(optimizer, "cfg", None) or getattr(optimizer, "args", None)
    lr = getattr(config, "lr", None)
    if lr is None:
        raise ConfigError("--ticket-tau: cannot read the optimizer's --lr to decay tau with the LR")
    return float(lr if isinstance(lr, (int, float)) else lr[0])  # --lr is a list in fairseq


def optimizer_views(optimizer, params):
    """For each ``{name: parameter}`` of ``params``: ``(stepped, view)``, the tensor a fairseq ``optimizer``
    updates in the parameter's place (under ``--fp16`` its fp32 master copy, which FP16Optimizer keeps in
    one flat buffer for all parameters unless ``--fp16-no-flatten-grads``; otherwise the parameter itself)
    and ``view(t)``: the parameter's part of ``t`` (``stepped``, its gradient or its same-shaped optimizer
    state, e.g. Adam's moments), shaped like the parameter."""
    masters = {}  # parameter -> (its master, the parameter's offset in it)
    if isinstance(optimizer, FP16Optimizer) and optimizer.has_flat_params:
        offsets = defaultdict(int)  # the flat buffers' layout: fp16_params in order, one buffer per device
        for param in optimizer.fp16_params:
            device = param.device.index
            masters[param] = (optimizer.fp32_params[device], offsets[device])
            offsets[device] += param.numel()
    elif isinstance(optimizer, FP16Optimizer):
        masters = {param: (master, 0) for param, master in zip(optimizer.fp16_params, optimizer.fp32_params)}

    def views(param):
        stepped, offset = masters.get(param, (param, 0))
        return stepped, lambda tensor: tensor.view(-1)[offset:offset + param.numel()].view_as(param)
    return {name: views(param) for name, param in params.items()}


class BaggingSubset(BaseWrapperDataset):
    """A fixed random ``fraction`` of a dataset (without replacement, drawn from ``seed``), batched in
    the order the wrapped dataset gives its members (e.g. its per-epoch shuffle)."""

    def __init__(self, dataset, fraction, seed):
        super().__init__(dataset)
        count = max(1, round(fraction * len(dataset)))
        self.indices = np.sort(np.random.default_rng(seed).choice(len(dataset), count, replace=False))

    def __getitem__(self, index):
        return self.dataset[self.indices[index]]

    def __len__(self):
        return len(self.indices)

    @property
    def sizes(self):
        sizes = self.dataset.sizes  # one array, or a list of them (NestedDictionaryDataset)
        return [s[self.indices] for s in sizes] if isinstance(sizes, list) else sizes[self.indices]

    def num_tokens(self, index):
        return self.dataset.num_tokens(self.indices[index])

    def size(self, index):
        return self.dataset.size(self.indices[index])

    @property
    def supports_prefetch(self):
        return False

    def ordered_indices(self):
        position = np.full(len(self.dataset), -1)
        position[self.indices] = np.arange(len(self.indices))
        order = position[self.dataset.ordered_indices()]
        return order[order >= 0]


class TicketTrainingMixin:
    """The hooks; mixed in before a fairseq task (see ``tasks/task_extension.py``)."""

    @property
    def ticket_cfg(self):
        return self.cfg if self.cfg is not None else self.args

    def load_dataset(self, split, *args, **kwargs):
        result = super().load_dataset(split, *args, **kwargs)
        check_options(self.ticket_cfg, TicketConfig)
        fraction = self.ticket_cfg.bagging_fraction
        if split == "train" and fraction < 1:
            full = len(self.datasets[split])
            self.datasets[split] = BaggingSubset(self.datasets[split], fraction, self.ticket_cfg.bagging_seed)
            logger.info(f"bagging: training on {len(self.datasets[split])} of the {full} examples of {split} "
                        f"(seed {self.ticket_cfg.bagging_seed})")
        return result

    def _ticket_setup(self, model, optimizer):
        cfg = self.ticket_cfg
        model = unwrapped_model(model)
        params = dict(model.named_parameters())
        self._masks, self._penalty = {}, {}
        if cfg.ticket_mask:
            self._masks = self._tensors_of_params(load_tensor_file(cfg.ticket_mask, "--ticket-mask"), params, "--ticket-mask")
        if cfg.ticket_penalty:
            self._penalty = self._tensors_of_params(load_tensor_file(cfg.ticket_penalty, "--ticket-penalty"), params, "--ticket-penalty")
        check_options(cfg, TicketConfig)
        if cfg.ticket_random_penalty:
            if cfg.ticket_penalty:
                raise ConfigError("--ticket-random-penalty and --ticket-penalty: give one of them")
            generator = torch.Generator().manual_seed(cfg.ticket_penalty_seed)
            kept = full_masks(params, prunable_names(params))
            self._penalty = {name: l.to(params[name].device)
                             for name, l in random_penalty(kept, cfg.ticket_random_penalty, generator).items()}
        self._params = params
        self._zero_pruned(optimizer)
        # every rank holds the same model; one writes it
        if cfg.ticket_save_init and not os.path.exists(cfg.ticket_save_init) and distributed_utils.get_global_rank() == 0:
            init = {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}
            torch.save(init, cfg.ticket_save_init + ".tmp")
            os.replace(cfg.ticket_save_init + ".tmp", cfg.ticket_save_init)

    def _tensors_of_params(self, tensors, params, flag):
        path = getattr(self.ticket_cfg, flag[2:].replace("-", "_"))
        for name, tensor in tensors.items():
            if name not in params:
                raise ConfigError(f"{flag} {path}: the model has no parameter {name}")
            if tensor.shape != params[name].shape:
                raise ConfigError(f"{flag} {path}: {name} has shape {tuple(tensor.shape)}, the model's {tuple(params[name].shape)}")
        return {name: tensor.to(params[name].device) for name, tensor in tensors.items()}

    @torch.no_grad()
    def _zero_pruned(self, optimizer):
        """Pruned entries to 0 wherever the weight lives: model, fp32 master copy, optimizer state.
        The master copy was made when the trainer built the optimizer, before this first update."""
        state = getattr(getattr(optimizer, "optimizer", None), "state", {})  # {stepped tensor: {key: value}}
        pruned = {name: self._params[name] for name in self._masks}
        for name, (stepped, view) in optimizer_views(optimizer, pruned).items():
            pruned[name].masked_fill_(~self._masks[name], 0)
            moments = [value for value in state.get(stepped, {}).values() if torch.is_tensor(value) and value.shape == stepped.shape]
            for tensor in [stepped, *moments]:
                view(tensor).masked_fill_(~self._masks[name], 0)

    def _penalised(self, criterion, tau_t):
        """``criterion`` with ``tau_t * sample_size * ||theta * l||_1`` added to its loss (see the module's docstring)."""
        def penalised_criterion(model, sample):
            loss, sample_size, logging_output = criterion(model, sample)
            l1 = penalty_l1(self._params, self._penalty)
            metrics.log_scalar("ticket_l1", float(l1.detach()), round=3)
            return loss + tau_t * sample_size * l1, sample_size, logging_output
        return penalised_criterion

    def train_step(self, sample, model, criterion, optimizer, update_num, ignore_grad=False):
        if not hasattr(self, "_masks"):
            self._ticket_setup(model, optimizer)
        tau = self.ticket_cfg.ticket_tau
        if self._penalty and tau > 0:
            criterion = self._penalised(criterion, tau * optimizer.get_lr() / peak_lr(optimizer))
        result = super().train_step(sample, model, criterion, optimizer, update_num, ignore_grad)
        with torch.no_grad():
            for name, mask in self._masks.items():
                grad = self._params[name].grad
                if grad is not None:
                    grad.masked_fill_(~mask, 0)
        return result


TICKETS = TaskExtension(TICKET_PREFIX[:-1], TicketTrainingMixin, TicketConfig, TICKET_TASKS)
register_extension(TICKETS)
