"""Every change this package makes to fairseq's behaviour, applied in one place: ``apply()``.

Applied once, when the user dir is imported (fairseq imports ``--user-dir`` while
pre-parsing arguments, before it reads any checkpoint or builds any batch). Each
repair is narrow, named after what it repairs, and covered by a regression test in
``tests/test_compat.py`` (data parallelism: ``tests/test_compat_distributed.py``, and
``tests/test_data_parallel.py`` end to end), or in the test of the feature it enables.

- ``allow_fairseq_checkpoint_globals``: torch >= 2.6 loads with ``weights_only=True``
  and refuses the ``argparse.Namespace`` (and, with ``--eval-bleu``, numpy arrays)
  that fairseq pickles into every checkpoint. We allow-list exactly those types
  instead of turning the weights-only safety off for every load.
- ``keep_last_batch``: fairseq-fixed drops the last batch when its size is not a
  multiple of ``--required-batch-size-multiple`` (default 8), so generation and
  validation silently skipped up to 7 sentences. Upstream fairseq keeps it; so do we.
- ``numpy2_shims``: ``np.compat`` (removed in numpy 2) and
  ``np.percentile(interpolation=)`` (removed in numpy 2.4) used by LM
  ``--sample-break-mode eos`` and ``--num-batch-buckets``.
- ``quiet_deprecation_noise``: the hydra/omegaconf/torch deprecation warnings
  printed by every fairseq CLI call.
- ``per_parameter_optimizer_settings``: every optimizer honours the per-parameter
  ``optim_overrides`` that fairseq's ``composite`` optimizer alone reads
  (``optimizer_groups.py``), so a model can keep parameters out of weight decay.
- ``unreadable_checkpoints_name_the_file``: a corrupt checkpoint file stops fairseq's
  loaders with one line naming the file, instead of torch's unpickling traceback.
- ``precision_flags_without_their_hardware_are_one_line``: ``--fp16`` without a GPU
  (fairseq's flat fp32 copy asks CUDA for its device: "Torch not compiled with CUDA
  enabled") and ``--bf16``/``--memory-efficient-bf16``/``--tpu`` without torch_xla
  (fairseq trains bf16 on TPUs only: "'NoneType' object has no attribute 'xla_device'")
  stop with one line naming what works.
- ``distributed_training_on_this_stack``: fairseq's data parallelism runs for real, and
  where upstream already works it is left to upstream (``infer_init_method``, its seeding).
  Under ``torchrun`` fairseq ignored the launcher when ``--distributed-world-size`` kept its
  default (the GPU count: 1 on a CPU machine or with one visible GPU per process), so every
  process trained alone: the process torchrun started (recognised by torchrun's own
  ``TORCHELASTIC_RUN_ID``/``LOCAL_WORLD_SIZE`` and the pid it records when it imports the
  package, so that commands it starts train alone as upstream trains them) takes the
  launcher's world size, and fairseq's own rule places it (GPU ``RANK % visible GPUs``,
  pipeline layouts; on CPUs, which that rule divides by, device 0).
  ``--distributed-world-size N`` on CPU asserted on the GPU count (or, in fairseq 0.12,
  spawned no worker and exited 0): CPU workers are spawned (gloo, each with its share of
  the cores' threads unless ``OMP_NUM_THREADS`` is set), a world size that cannot start is
  one line, and so is ``--cpu`` inside a SLURM allocation (fairseq's SLURM launch places
  workers on GPUs: torchrun works). torch's DDP refuses the GPU ``device_ids`` fairseq
  passes for a CPU model, and fairseq's ``all_gather_list`` allocates CUDA buffers; on
  resume, the other ranks refused the checkpoint rank 0 broadcast them: it is unpickled
  weights-only with the file allow-list plus fairseq's OmegaConf config types.
  Per-rank random streams are no repair: fairseq seeds every rank alike (LayerDrop and
  quantization rely on it); the package's own per-example draws (SHAPE offsets, mixup and
  DIP weights) go through ``modules/rank_streams.py``, rank 0 drawing what one process draws.
- ``validate_takes_the_checkpoints_task``: ``fairseq-validate DATA --path CKPT`` without
  ``--task`` ended in ``KeyError: None`` inside fairseq's parser (fairseq-validate has no
  default task); the checkpoint's task is used (``validate_task.py``).
- ``one_line_errors_in_commands``: in a command-line program (fairseq's ``fairseq-*``
  CLIs and ours), a ``ConfigError`` prints one line instead of a traceback
  (``errors.py``); a Python session that imports the package keeps its own hook.
"""

import argparse
import functools
import logging
import os
import sys
import types
import warnings

import numpy as np
import torch

# Warnings printed by every fairseq CLI call on this stack, none actionable by a
# user: hydra's API deprecations (fairseq composes its config with the old API),
# torch deprecations of calls inside fairseq, and pin_memory without a GPU.
DEPRECATION_NOISE = (
    r"hydra\.experimental\.\w+\(\) is no longer experimental",
    r"The version_base parameter is not specified",
    r"In '.*': Usage of deprecated keyword in package header",
    r"'config' is validated against ConfigStore schema",
    r"The strict flag in the compose API is deprecated",
    r".*torch\.jit\.\w+.* is deprecated",
    r".*`torch\.nn\.utils\.weight_norm` is deprecated",
    r".*torch\.cuda\.amp\..* is deprecated",
    r"'pin_memory' argument is set as true but no accelerator is found",
    r"pkg_resources is deprecated",
    r"Support for mismatched key_padding_mask and attn_mask is deprecated",
    r"`broadcast_buffers` is deprecated",
)


def quiet_deprecation_noise():
    # Logged on every call: tensorboardX only matters to speech tasks; hydra's job bookkeeping.
    logging.getLogger("fairseq.tasks.text_to_speech").setLevel(logging.WARNING)
    logging.getLogger("hydra").setLevel(logging.WARNING)
    for message in DEPRECATION_NOISE:
        warnings.filterwarnings("ignore", message=r"\s*" + message)
    # Deprecations raised inside these libraries, whatever their text.
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"(hydra|omegaconf|antlr4|pkg_resources)(\..*)?")


def allow_fairseq_checkpoint_globals():
    """Allow-list the non-tensor types fairseq stores in its checkpoints."""
    # Arrays and numpy scalars (a best BLEU) pickle as calls to these two
    # rebuilders plus their dtype classes. numpy 2 moved ``numpy.core`` to
    # ``numpy._core``; files written under numpy 1 name the old module, so each
    # rebuilder is allowed under both names.
    safe = [argparse.Namespace, np.ndarray, np.dtype]
    for rebuilder in (np._core.multiarray._reconstruct, np._core.multiarray.scalar):
        safe += [(rebuilder, f"{module}.multiarray.{rebuilder.__name__}") for module in ("numpy.core", "numpy._core")]
    safe += [getattr(np.dtypes, name) for name in dir(np.dtypes) if name.endswith("DType")]
    torch.serialization.add_safe_globals(safe)


def keep_last_batch():
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
    if "compat" not in vars(np):
        # fairseq only uses ``np.compat.long`` (``int`` on Python 3).
        np.compat = types.SimpleNamespace(long=int)
    from fairseq.data import bucket_pad_length_dataset, data_utils

    for module in (data_utils, bucket_pad_length_dataset):
        module.get_buckets = get_buckets
    audio = sys.modules.get("fairseq.data.audio.raw_audio_dataset")
    if audio is not None:
        audio.get_buckets = get_buckets


def per_parameter_optimizer_settings():
    from fairseq import optim
    from fairseq.optim.fp16_optimizer import FP16Optimizer

    from fairseq_plugins.errors import ConfigError
    from fairseq_plugins.optimizer_groups import optimizer_overrides, param_groups

    if getattr(optim.build_optimizer, "builds_param_groups", False):
        return
    build_optimizer = optim.build_optimizer
    build_fp16_optimizer = FP16Optimizer.build_optimizer.__func__

    def build_optimizer_with_groups(cfg, params, *args, **kwargs):
        params = list(params)
        if params and not isinstance(params[0], dict):
            groups = param_groups(p for p in params if p.requires_grad)
            if groups is not None:
                return optim._build_optimizer(cfg, groups, *args, **kwargs)
        return build_optimizer(cfg, params, *args, **kwargs)

    def build_fp16_optimizer_checked(cls, cfg, params, **kwargs):
        params = list(params)
        flatten = not getattr(cfg.common, "fp16_no_flatten_grads", False) and not getattr(cfg.common, "bf16", False)
        if flatten and any(optimizer_overrides(p) for p in params):
            raise ConfigError("--no-weight-decay-embeddings with --fp16 needs --fp16-no-flatten-grads "
                              "(flat fp32 gradients are one parameter group)")
        return build_fp16_optimizer(cls, cfg, params, **kwargs)

    build_optimizer_with_groups.__wrapped__ = build_optimizer
    build_optimizer_with_groups.builds_param_groups = True
    optim.build_optimizer = build_optimizer_with_groups
    FP16Optimizer.build_optimizer = classmethod(build_fp16_optimizer_checked)


def unreadable_checkpoints_name_the_file():
    import zipfile

    from fairseq import checkpoint_utils

    from fairseq_plugins.errors import ConfigError

    load_checkpoint_to_cpu = checkpoint_utils.load_checkpoint_to_cpu
    if getattr(load_checkpoint_to_cpu, "names_unreadable_files", False):
        return

    @functools.wraps(load_checkpoint_to_cpu)
    def load_checkpoint_naming_the_file(path, *args, **kwargs):
        try:
            return load_checkpoint_to_cpu(path, *args, **kwargs)
        except Exception:
            # torch.save writes zip archives; anything else (garbage, a truncated copy) fails in
            # torch's unpickler with a message that names neither the file nor the problem.
            if os.path.isfile(path) and not zipfile.is_zipfile(path):
                raise ConfigError(f"{path}: not a checkpoint (not a file written by torch.save, or truncated)") from None
            raise

    load_checkpoint_naming_the_file.names_unreadable_files = True
    checkpoint_utils.load_checkpoint_to_cpu = load_checkpoint_naming_the_file


def precision_flags_without_their_hardware_are_one_line():
    from fairseq import utils as fairseq_utils
    from fairseq.optim.fp16_optimizer import FP16Optimizer

    from fairseq_plugins.errors import ConfigError

    if getattr(fairseq_utils.get_tpu_device, "is_one_line_without_xla", False):
        return
    build_fp32_params = FP16Optimizer.build_fp32_params.__func__
    get_tpu_device = fairseq_utils.get_tpu_device

    def build_fp32_params_checked(cls, args, params, flatten=True):
        if flatten and not torch.cuda.is_available():
            raise ConfigError("--fp16 without a GPU: fairseq's flat fp32 copy of the parameters asks CUDA for its device; add "
                              "--fp16-no-flatten-grads, use --memory-efficient-fp16, or train in fp32 on CPUs")
        return build_fp32_params(cls, args, params, flatten=flatten)

    def tpu_device_checked():
        if fairseq_utils.xm is None:
            raise ConfigError("--bf16 (like --memory-efficient-bf16 and --tpu) trains on TPUs in fairseq, through "
                              "torch_xla (not installed): on GPUs use --fp16 or --amp, on CPUs train in fp32")
        return get_tpu_device()

    tpu_device_checked.is_one_line_without_xla = True
    FP16Optimizer.build_fp32_params = classmethod(build_fp32_params_checked)
    fairseq_utils.get_tpu_device = tpu_device_checked


# torchrun's own variables (TORCHELASTIC_RUN_ID, LOCAL_WORLD_SIZE) besides the four that fairseq reads:
# other launchers (a Kubernetes PyTorchJob, ...) set only those four.
TORCHRUN_VARIABLES = ("TORCHELASTIC_RUN_ID", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK")
# The pid of the process torchrun started, recorded when it imports the package. Its children inherit
# torchrun's variables too (an evaluation command, fairseq-plugins-tickets' fairseq-train runs): they
# see another pid here and do not join the launcher's process group.
TORCHRUN_WORKER = "FAIRSEQ_PLUGINS_TORCHRUN_WORKER"


def mark_torchrun_worker():
    if all(name in os.environ for name in TORCHRUN_VARIABLES):
        os.environ.setdefault(TORCHRUN_WORKER, str(os.getpid()))


def torchrun_world_size():
    """WORLD_SIZE if torchrun started this very process, else None."""
    if all(name in os.environ for name in TORCHRUN_VARIABLES) and os.environ.get(TORCHRUN_WORKER) == str(os.getpid()):
        return int(os.environ["WORLD_SIZE"])
    return None


def runs_on_cpu(cfg):
    return cfg.common.cpu or not torch.cuda.is_available()


def free_local_port():
    import socket

    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]


def settle_data_parallel_config(cfg, default_world_size):
    """Fill what fairseq's ``infer_init_method`` leaves wrong on this stack; fairseq's ``call_main`` does the rest.

    Returns True when this process must spawn ``distributed_world_size`` CPU workers itself
    (fairseq spawns one per GPU only).
    """
    dist_cfg = cfg.distributed_training
    spawn_cpu_workers = False
    if dist_cfg.distributed_init_method is None and not cfg.common.tpu:
        launched = torchrun_world_size()
        if launched is not None:
            adopt_torchrun_world_size(cfg, launched, default_world_size)
        else:
            spawn_cpu_workers = infer_cpu_spawn(cfg)
    if runs_on_cpu(cfg) and dist_cfg.distributed_world_size > 1 and dist_cfg.distributed_backend == "nccl":
        logging.getLogger(__name__).info("--distributed-backend gloo: NCCL needs GPUs")
        dist_cfg.distributed_backend = "gloo"
    return spawn_cpu_workers


def adopt_torchrun_world_size(cfg, launched, default_world_size):
    """fairseq follows torchrun only when ``--distributed-world-size`` is not 1, and the default is the
    GPU count: on a CPU, or with one visible GPU per process, every rank trained alone. Take the
    launcher's world size; fairseq's own rule then places the ranks (GPU ``RANK % visible GPUs``,
    pipeline layouts)."""
    from fairseq_plugins.errors import ConfigError

    dist_cfg = cfg.distributed_training
    if dist_cfg.distributed_world_size not in (launched, default_world_size):
        raise ConfigError(f"--distributed-world-size {dist_cfg.distributed_world_size}: the launcher started "
                          f"{launched} processes (WORLD_SIZE); leave the flag out or give the same number")
    dist_cfg.distributed_world_size = launched
    if launched > 1 and torch.cuda.device_count() == 0:
        # fairseq's rule divides the rank by the GPU count: without GPUs, do its other steps here.
        dist_cfg.distributed_init_method = "env://"
        dist_cfg.distributed_rank = int(os.environ["RANK"])
        dist_cfg.device_id = 0
        dist_cfg.distributed_no_spawn = True


def infer_cpu_spawn(cfg):
    """fairseq's own spawning of ``--distributed-world-size`` workers: True when they are CPU workers."""
    from fairseq_plugins.errors import ConfigError

    dist_cfg = cfg.distributed_training
    wanted = dist_cfg.distributed_world_size
    if wanted <= 1 or dist_cfg.distributed_no_spawn:
        return False
    on_cpu = runs_on_cpu(cfg)
    if "SLURM_STEP_NODELIST" in os.environ or "SLURM_JOB_NODELIST" in os.environ:
        if on_cpu:
            # Every branch of fairseq's SLURM launch counts or selects GPUs.
            raise ConfigError(f"--distributed-world-size {wanted} on CPUs inside a SLURM allocation: fairseq's SLURM launch "
                              f"places workers on GPUs; start them with torchrun --nproc_per_node {wanted} fairseq-train ...")
        return False
    devices, kind = (os.cpu_count(), "CPU cores") if on_cpu else (torch.cuda.device_count(), "GPUs")
    if wanted > devices:
        raise ConfigError(f"--distributed-world-size {wanted}: this machine has {devices} {kind}; spawn at most that "
                          "many workers, or start them on several machines with torchrun or srun")
    if not on_cpu:
        return False
    if dist_cfg.distributed_port <= 0:
        dist_cfg.distributed_port = free_local_port()
    dist_cfg.distributed_init_method = f"tcp://localhost:{dist_cfg.distributed_port}"
    return True


def usable_cores():
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def run_cpu_worker(index, main, cfg, kwargs):
    import multiprocessing

    from fairseq.distributed import utils as distributed_utils

    # A spawned worker inherits the "spawn" start method, so its data loaders would spawn their
    # workers too (re-importing fairseq) and leave named semaphores that the parent's resource
    # tracker reports as leaked at exit. Fork them, as a single-process fairseq-train does.
    multiprocessing.set_start_method("fork", force=True)
    if "OMP_NUM_THREADS" not in os.environ:
        # Every worker would start a thread per core (torchrun sets OMP_NUM_THREADS=1 instead): share them.
        torch.set_num_threads(max(1, usable_cores() // cfg.distributed_training.distributed_world_size))
    distributed_utils.distributed_main(index, main, cfg, kwargs)


def checkpoint_broadcast_globals():
    """What the checkpoint rank 0 broadcasts on resume holds beyond a checkpoint file: fairseq's
    OmegaConf config (a ``DictConfig`` of ``AnyNode`` values) and the placeholders that stand for
    its tensors (``broadcast_object`` sends them apart)."""
    import collections
    import typing

    from fairseq.distributed.utils import _TensorPlaceholder
    from omegaconf import DictConfig, ListConfig
    from omegaconf.base import ContainerMetadata, Metadata
    from omegaconf.nodes import AnyNode

    return [DictConfig, ListConfig, ContainerMetadata, Metadata, AnyNode, typing.Any, dict, list, int,
            collections.defaultdict, _TensorPlaceholder]


def distributed_training_on_this_stack():
    from fairseq.dataclass.configs import DistributedTrainingConfig
    from fairseq.distributed import utils as distributed_utils
    from fairseq.models import distributed_fairseq_model

    call_main = distributed_utils.call_main
    if getattr(call_main, "settles_data_parallel", False):
        return
    mark_torchrun_worker()
    default_world_size = DistributedTrainingConfig().distributed_world_size

    @functools.wraps(call_main)
    def call_main_data_parallel(cfg, main, **kwargs):
        if not settle_data_parallel_config(cfg, default_world_size):
            return call_main(cfg, main, **kwargs)
        dist_cfg = cfg.distributed_training
        kwargs["start_rank"] = dist_cfg.distributed_rank
        dist_cfg.distributed_rank = None  # distributed_main numbers the workers
        torch.multiprocessing.spawn(run_cpu_worker, args=(main, cfg, kwargs), nprocs=dist_cfg.distributed_world_size, join=True)

    call_main_data_parallel.settles_data_parallel = True
    distributed_utils.call_main = call_main_data_parallel

    data_parallel = distributed_fairseq_model.DistributedDataParallel

    def data_parallel_on_any_device(module, device_ids=None, output_device=None, **kwargs):
        if next(module.parameters()).device.type == "cpu":
            device_ids = output_device = None  # torch's DDP takes device ids for GPU modules only
        return data_parallel(module, device_ids=device_ids, output_device=output_device, **kwargs)

    distributed_fairseq_model.DistributedDataParallel = data_parallel_on_any_device

    all_gather_list = distributed_utils.all_gather_list

    @functools.wraps(all_gather_list)
    def all_gather_list_on_any_backend(data, group=None, max_size=16384):
        group = distributed_utils.get_global_group() if group is None else group
        buffer_size = max_size * distributed_utils.get_world_size(group)
        buffer = getattr(all_gather_list_on_any_backend, "_buffer", None)
        if torch.distributed.get_backend(group) != "nccl" and (buffer is None or buffer.numel() < buffer_size):
            # fairseq reads its buffers from the attributes of the module-level name (this
            # function): CPU ones stop it from allocating CUDA memory for a gloo group.
            all_gather_list_on_any_backend._buffer = torch.zeros(buffer_size, dtype=torch.uint8)
            all_gather_list_on_any_backend._cpu_buffer = torch.zeros(max_size, dtype=torch.uint8)
        return all_gather_list(data, group, max_size)

    distributed_utils.all_gather_list = all_gather_list_on_any_backend

    broadcast_object_slow = distributed_utils._broadcast_object_slow

    @functools.wraps(broadcast_object_slow)
    def broadcast_checkpoint_weights_only(*args, **kwargs):
        # Still weights-only: the file allow-list (allow_fairseq_checkpoint_globals) plus the config's types.
        with torch.serialization.safe_globals(checkpoint_broadcast_globals()):
            return broadcast_object_slow(*args, **kwargs)

    distributed_utils._broadcast_object_slow = broadcast_checkpoint_weights_only


def one_line_errors_in_commands():
    from fairseq_plugins import errors

    if os.path.basename(sys.argv[0]).startswith("fairseq-"):
        errors.install_excepthook()


def validate_takes_the_checkpoints_task():
    from fairseq_plugins.validate_task import use_the_checkpoints_task

    use_the_checkpoints_task()


def apply():
    quiet_deprecation_noise()
    allow_fairseq_checkpoint_globals()
    keep_last_batch()
    numpy2_shims()
    per_parameter_optimizer_settings()
    unreadable_checkpoints_name_the_file()
    precision_flags_without_their_hardware_are_one_line()
    distributed_training_on_this_stack()
    validate_takes_the_checkpoints_task()
    one_line_errors_in_commands()
