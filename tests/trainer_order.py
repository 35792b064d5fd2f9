"""fairseq's own trainer, on CPU, in every precision mode: a harness for hooks that read or write gradients.

With ``--fp16`` fairseq trains an fp16 model through ``FP16Optimizer`` (an fp32 master copy, one flat
buffer by default) or ``MemoryEfficientFP16Optimizer`` (fp32 optimizer state only). Between backward and
step the model's gradients are then loss-scaled, and the division by the sample size, the unscaling and
the clipping are applied lazily, at the step; the master copy gets the gradients when clipping syncs
them. ``build_trainer`` builds fairseq's ``Trainer`` on CPU parameters in each mode, so a test runs its
real ``train_step``: per micro-batch ``task.train_step`` (forward, ``optimizer.backward``), then
``all_reduce_grads``, ``multiply_grads(1 / sample_size)``, ``clip_grad_norm``, ``task.optimizer_step``
and the optimizer's step. ``applied_gradients`` records what each step applies, per model parameter.

On CPU: FP16Optimizer keys its flat buffer by ``torch.cuda.current_device()``, which a CPU has no
answer to (and the package refuses flat ``--fp16`` without a GPU in one line, compat/optimizers.py); a CPU
parameter's device index is None, so building the buffer as if on a GPU whose current device is None
gives the layout a one-GPU run has. The loss scale starts at 4 (``--fp16-init-scale``): an overflow on CPU
would end in fairseq's ``torch.tensor(0.0).cuda()``. Every mode starts from the same weights, values
an fp16 model holds exactly, so fp16 results compare with fp32 ones.
"""

import contextlib
from unittest import mock

import torch

from fairseq import metrics, options, tasks
from fairseq.dataclass.utils import convert_namespace_to_omegaconf
from fairseq.optim import FP16Optimizer
from fairseq.trainer import Trainer

from fairseq_plugins.tasks.ticket_training import optimizer_views
from fairseq_plugins.tasks.task_extension import unwrapped_model

PRECISIONS = {
    "fp32": [],
    "fp16": ["--fp16"],  # FP16Optimizer, flat fp32 master buffer
    "fp16-no-flatten": ["--fp16", "--fp16-no-flatten-grads"],  # FP16Optimizer, a master tensor per parameter
    "memory-efficient-fp16": ["--memory-efficient-fp16"],
}
FP16_PRECISIONS = [name for name in PRECISIONS if name != "fp32"]


def build_trainer(flags, precision, seed=1):
    """A fairseq Trainer for fairseq-train's ``flags`` (data, task, model, criterion, optimizer) in ``precision``."""
    parser = options.get_training_parser()
    args = options.parse_args_and_arch(parser, [*map(str, flags), *PRECISIONS[precision], "--cpu", "--num-workers", "0",
                                                "--fp16-init-scale", "4", "--seed", str(seed)])
    cfg = convert_namespace_to_omegaconf(args)
    torch.manual_seed(seed)
    task = tasks.setup_task(cfg.task)
    task.load_dataset("train")
    model = task.build_model(cfg.model)
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(param.half().float())
    criterion = task.build_criterion(cfg.criterion)
    trainer = Trainer(cfg, task, model, criterion)
    with flat_masters_on_cpu():
        trainer.optimizer  # built before the first update, as fairseq-train builds it
    return trainer


def flat_masters_on_cpu():
    build = FP16Optimizer.build_fp32_params.__func__

    def build_as_on_a_gpu(cls, args, params, flatten=True):
        with mock.patch.object(torch.cuda, "is_available", lambda: True), \
                mock.patch.object(torch.cuda, "current_device", lambda: None):
            return build(cls, args, params, flatten=flatten)
    return mock.patch.object(FP16Optimizer, "build_fp32_params", classmethod(build_as_on_a_gpu))


def save(trainer, path):
    trainer.consolidate_optimizer()  # as fairseq's checkpoint_utils.save_checkpoint does first
    trainer.save_checkpoint(str(path), {})


def resume(trainer, path):
    """fairseq-train --restore-file PATH: model, optimizer state (the optimizer is built anew) and loss scale."""
    with flat_masters_on_cpu():
        trainer.load_checkpoint(str(path))


def batch(trainer, start, size):
    """Examples ``start .. start + size - 1`` of the train split, collated."""
    dataset = trainer.task.dataset("train")
    return dataset.collater([dataset[i] for i in range(start, start + size)])


def named_parameters(trainer):
    return dict(unwrapped_model(trainer.model).named_parameters())


def stepped_views(trainer, pick=lambda stepped, state: stepped):
    """{parameter name: its part of ``pick(stepped, state)``}, float32 copies shaped like the parameter, where
    ``stepped`` is the tensor the optimizer steps in the parameter's place (the fp32 master under ``--fp16``)
    and ``state`` its optimizer state: the weights by default, ``stepped.grad`` or a moment on request."""
    state = trainer.optimizer.optimizer.state
    return {name: view(pick(stepped, state.get(stepped, {}))).detach().float().clone()
            for name, (stepped, view) in optimizer_views(trainer.optimizer, named_parameters(trainer)).items()}


@contextlib.contextmanager
def applied_gradients(trainer):
    """Yields a list; each optimizer step appends {parameter name: the fp32 gradient it applies}.
    (fairseq's Adam has no fused unscaling, so the gradients are unscaled and clipped before its step.)"""
    recorded = []
    inner = trainer.optimizer.optimizer
    step = inner.step

    def recording_step(*args, **kwargs):
        recorded.append(stepped_views(trainer, lambda stepped, state: stepped.grad))
        return step(*args, **kwargs)

    with mock.patch.object(inner, "step", recording_step):
        yield recorded


def train_step(trainer, samples):
    """One update over ``samples`` (its micro-batches); returns fairseq's logged values (``gnorm``, ...)."""
    with metrics.aggregate(new_root=True) as aggregated:
        trainer.train_step(samples)
    return aggregated.get_smoothed_values()
