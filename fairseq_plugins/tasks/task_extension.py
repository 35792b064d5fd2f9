"""Task extensions: hooks and flags added to registered fairseq tasks, stackable.

fairseq has no training callbacks; its sanctioned seams are a task's methods (``train_step`` once
per micro-batch, ``optimizer_step`` once per update, ``load_dataset``, ``build_model``). A
``TaskExtension`` is a mixin overriding some of them (each calling ``super()``) and a dataclass of
its flags. ``register_extension`` registers ``<prefix>_<task>`` for each of its base tasks, and on
top of every extended task already registered on one of them, so extensions stack:
``monitored_ticket_translation`` is translation with the ticket hooks inside the monitor's.
"""

import dataclasses
from dataclasses import dataclass

from torch import nn

from fairseq.distributed import (
    DistributedTimeoutWrapper, LegacyDistributedDataParallel, ModuleProxyWrapper, TPUDistributedDataParallel,
)
from fairseq.tasks import TASK_DATACLASS_REGISTRY, TASK_REGISTRY, register_task

from fairseq_plugins.options import copied_fields

DATA_PARALLEL_WRAPPERS = (DistributedTimeoutWrapper, ModuleProxyWrapper, nn.parallel.DistributedDataParallel,
                          LegacyDistributedDataParallel, TPUDistributedDataParallel)


@dataclass(frozen=True)
class TaskExtension:
    prefix: str  # the registered name is <prefix>_<task>
    mixin: type  # mixed in before the task's class
    config: type  # a FairseqDataclass: its fields become the extended task's flags
    base_tasks: tuple  # the registered tasks it extends


# extended task name -> (base task name, the extensions applied, outermost first)
EXTENDED_TASKS = {}


def unwrapped_model(model: nn.Module) -> nn.Module:
    """The model inside fairseq's data-parallel wrappers (``ModuleProxyWrapper(DistributedDataParallel(model))``
    and the like), whose parameter and module names carry no ``module.`` prefixes: the trainer hands
    tasks the wrapped model."""
    while isinstance(model, DATA_PARALLEL_WRAPPERS):
        model = model.module
    return model


def extend(extension, task_name, base_task_name, applied):
    base, base_config = TASK_REGISTRY[task_name], TASK_DATACLASS_REGISTRY[task_name]
    suffix = "".join(part.capitalize() for part in extension.prefix.split("_"))
    config = dataclasses.make_dataclass(f"{suffix}{base_config.__name__}", copied_fields(extension.config), bases=(base_config,))
    name = f"{extension.prefix}_{task_name}"
    task = type(f"{suffix}{base.__name__}", (extension.mixin, base), {"__doc__": f"{task_name} + {extension.mixin.__module__}"})
    register_task(name, dataclass=config)(task)
    EXTENDED_TASKS[name] = (base_task_name, (extension, *applied))


def register_extension(extension):
    stacked_on = [(name, base, applied) for name, (base, applied) in EXTENDED_TASKS.items() if base in extension.base_tasks]
    for task_name in extension.base_tasks:
        extend(extension, task_name, task_name, ())
    for task_name, base, applied in stacked_on:
        extend(extension, task_name, base, applied)
