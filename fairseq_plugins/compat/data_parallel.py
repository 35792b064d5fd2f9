"""Data-parallel training on this stack, through fairseq's own launchers."""

import functools
import logging
import os

import torch

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
    """Data-parallel training runs for real on this stack (torchrun; fairseq's own spawning, on CPUs
    too), with fairseq's seeding and device rules left in place where upstream already works.

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
    DIP weights) go through ``modules/rank_streams.py``, rank 0 drawing what one process draws."""
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
