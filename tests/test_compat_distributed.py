"""compat.data_parallel.distributed_training_on_this_stack acts only where upstream fairseq fails.

GPU layouts are checked on CPU by faking torch's GPU count: under torchrun fairseq's own rule
places the ranks (``RANK % visible GPUs``, pipeline layouts); a process that torchrun did not start
itself trains alone, as upstream trains it; fairseq's seeding is untouched (LayerDrop drops the
same layers on every rank) while the package's own draws differ per rank; the checkpoint that
rank 0 broadcasts on resume is unpickled weights-only; the machine's cores are shared by spawned
CPU workers; precision and launch flags this machine cannot run are one line.
"""

import argparse
import io
import os
import pickle

import pytest
import torch
from omegaconf import OmegaConf

from fairseq_plugins.compat import data_parallel as compat
from fairseq_plugins.errors import ConfigError

# fairseq's config is composed with hydra's deprecated API (the CLIs silence this through compat).
pytestmark = pytest.mark.filterwarnings(r"ignore:\s*(hydra|In 'config'|'config' is validated|The strict flag|The version_base):UserWarning")
TORCHRUN_ENV = {"TORCHELASTIC_RUN_ID": "job", "LOCAL_WORLD_SIZE": "2", "MASTER_ADDR": "localhost", "MASTER_PORT": "29500"}


def fairseq_config(*flags):
    """The configuration fairseq-train builds from ``flags``."""
    from fairseq import options
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    args = options.parse_args_and_arch(options.get_training_parser(), ["data", "--arch", "transformer", *map(str, flags)])
    return convert_namespace_to_omegaconf(args)


def launch(monkeypatch, cfg, gpus, env, started_by_torchrun=True):
    """fairseq's call_main (with the package's repair) on a machine with ``gpus`` GPUs, in ``env``;
    returns the distributed config a worker would start with, or None for a process training alone."""
    from fairseq.distributed import utils as distributed_utils

    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpus > 0)
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: None)
    for name in list(os.environ):
        if name in compat.TORCHRUN_VARIABLES or name.startswith("SLURM_") or name == compat.TORCHRUN_WORKER:
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    # torchrun started this process, or this process's parent (which recorded its own pid).
    monkeypatch.setenv(compat.TORCHRUN_WORKER, str(os.getpid() if started_by_torchrun else os.getppid()))
    started = []
    monkeypatch.setattr(distributed_utils, "distributed_main", lambda device_id, main, cfg, kwargs: started.append(cfg.distributed_training))
    distributed_utils.call_main(cfg, lambda cfg: started.append(None))
    return started[0]


@pytest.mark.parametrize("gpus, rank, expected_device", [
    (1, 1, 0),  # one visible GPU per process (CUDA_VISIBLE_DEVICES): fairseq saw a world of 1
    (2, 3, 1),  # more processes than GPUs
    (0, 1, 0),  # CPUs
])
def test_torchrun_places_ranks_by_fairseqs_rule(monkeypatch, gpus, rank, expected_device):
    env = dict(TORCHRUN_ENV, WORLD_SIZE="4", RANK=str(rank), LOCAL_RANK=str(rank))
    dist_cfg = launch(monkeypatch, fairseq_config(), gpus, env)
    assert (dist_cfg.distributed_world_size, dist_cfg.distributed_rank, dist_cfg.device_id) == (4, rank, expected_device)
    assert dist_cfg.distributed_init_method == "env://" and dist_cfg.distributed_no_spawn
    assert dist_cfg.distributed_backend == ("gloo" if gpus == 0 else "nccl")


def test_torchrun_keeps_fairseqs_pipeline_layout(monkeypatch):
    """Two pipelines of two GPUs each on a 4-GPU node: rank 1's pipeline starts on GPU 2."""
    cfg = fairseq_config("--pipeline-model-parallel", "--pipeline-balance", "[1, 1]", "--pipeline-devices", "[0, 1]")
    dist_cfg = launch(monkeypatch, cfg, 4, dict(TORCHRUN_ENV, WORLD_SIZE="2", RANK="1", LOCAL_RANK="1"))
    assert dist_cfg.device_id == 2 and list(dist_cfg.pipeline_devices) == [2, 3]


@pytest.mark.parametrize("env, started_by_torchrun", [
    (dict(TORCHRUN_ENV, WORLD_SIZE="2", RANK="0", LOCAL_RANK="0"), False),  # a command a torchrun worker started
    ({"MASTER_ADDR": "localhost", "MASTER_PORT": "29500", "WORLD_SIZE": "2", "RANK": "0"}, True),  # not torchrun
])
def test_a_process_torchrun_did_not_start_trains_alone(monkeypatch, env, started_by_torchrun):
    assert launch(monkeypatch, fairseq_config(), 0, env, started_by_torchrun) is None


def test_the_process_torchrun_started_records_its_pid_for_its_children(monkeypatch):
    for name, value in dict(TORCHRUN_ENV, WORLD_SIZE="2", RANK="0").items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv(compat.TORCHRUN_WORKER, "")  # so that monkeypatch removes what the package records
    monkeypatch.delenv(compat.TORCHRUN_WORKER)
    compat.mark_torchrun_worker()
    assert compat.torchrun_world_size() == 2
    monkeypatch.setattr(os, "getpid", lambda: os.getppid())  # a child: same environment, another pid
    compat.mark_torchrun_worker()
    assert compat.torchrun_world_size() is None


def test_cpu_workers_inside_slurm_are_one_line(monkeypatch):
    env = {"SLURM_JOB_NODELIST": "node1", "SLURM_NNODES": "1", "SLURM_NTASKS": "1", "SLURM_JOB_ID": "5"}
    cfg = fairseq_config("--distributed-world-size", 2, "--cpu")
    with pytest.raises(ConfigError, match="torchrun --nproc_per_node 2 fairseq-train"):
        launch(monkeypatch, cfg, 0, env, started_by_torchrun=False)


def test_fp16_and_bf16_without_their_hardware_are_one_line(monkeypatch):
    from fairseq import utils
    from fairseq.optim.fp16_optimizer import FP16Optimizer

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    params = [torch.nn.Parameter(torch.ones(3, dtype=torch.half))]
    with pytest.raises(ConfigError, match="--fp16-no-flatten-grads"):
        FP16Optimizer.build_fp32_params(argparse.Namespace(), params, flatten=True)
    assert FP16Optimizer.build_fp32_params(argparse.Namespace(), params, flatten=False)[0].dtype == torch.float32
    monkeypatch.setattr(utils, "xm", None)
    with pytest.raises(ConfigError, match="--bf16 .* on GPUs use --fp16 or --amp"):
        utils.get_tpu_device()


def seeded_trainer(rank, seed=1, updates=7):
    return argparse.Namespace(cfg=argparse.Namespace(common=argparse.Namespace(seed=seed)),
                              get_num_updates=lambda: updates, data_parallel_rank=rank)


@pytest.mark.parametrize("seed, updates", [(1, 7), (-1, 0)])
def test_every_rank_keeps_fairseqs_random_stream(seed, updates):
    """Quantization's k-means and LayerDrop rely on every rank drawing alike after fairseq's reseeding."""
    from fairseq.modules import LayerDropModuleList
    from fairseq.trainer import Trainer

    layers = LayerDropModuleList(0.5, [torch.nn.Identity() for _ in range(8)]).train()

    def kept_layers(rank):
        Trainer._set_seed(seeded_trainer(rank, seed, updates))
        return [id(layer) for layer in layers] + torch.rand(4).tolist()

    assert kept_layers(1) == kept_layers(0)


def tiny_stock_transformer(dictionary, **options):
    from fairseq.models.transformer import TransformerModel, base_architecture

    args = argparse.Namespace(encoder_layers=3, decoder_layers=3, encoder_embed_dim=16, decoder_embed_dim=16,
                              encoder_ffn_embed_dim=32, decoder_ffn_embed_dim=32, encoder_attention_heads=2,
                              decoder_attention_heads=2, encoder_layerdrop=0.5, decoder_layerdrop=0.5, dropout=0.1,
                              max_source_positions=64, max_target_positions=64, **options)
    base_architecture(args)
    task = argparse.Namespace(source_dictionary=dictionary, target_dictionary=dictionary)
    return TransformerModel.build_model(args, task).train()


def layers_that_ran(model, tokens):
    ran = []
    for name in ("encoder", "decoder"):
        for index, layer in enumerate(getattr(model, name).layers):
            layer.register_forward_hook(lambda *_, name=name, index=index: ran.append(f"{name}.{index}"))
    lengths = torch.full((len(tokens),), tokens.size(1))
    return lambda: (ran.clear(), model(tokens, lengths, tokens), list(ran))[-1]


def dictionary_and_tokens():
    from fairseq.data import Dictionary

    dictionary = Dictionary()
    for word in "abcdefgh":
        dictionary.add_symbol(word)
    return dictionary, torch.randint(4, len(dictionary), (4, 6), generator=torch.Generator().manual_seed(0))


def layerdrop_worker(rank, port, with_user_dir, results):
    """A rank of a 2-worker gloo group: per update, fairseq's reseeding, the layers a stock
    transformer with LayerDrop ran, and (with the user dir) SHAPE offsets drawn before them."""
    if with_user_dir:
        import fairseq_plugins  # noqa: F401
    from fairseq.trainer import Trainer

    torch.distributed.init_process_group("gloo", init_method=f"tcp://localhost:{port}", rank=rank, world_size=2)
    torch.manual_seed(0)
    dictionary, tokens = dictionary_and_tokens()
    run = layers_that_ran(tiny_stock_transformer(dictionary), tokens)
    shape = None
    if with_user_dir:
        from fairseq_plugins.modules.shape import ShiftedSinusoidalPositions

        shape = ShiftedSinusoidalPositions(16, 1, 64, 40).train()
    per_update = []
    for update in range(6):
        Trainer._set_seed(seeded_trainer(rank, updates=update))
        offsets = shape.offsets(8, "cpu").view(-1).tolist() if shape is not None else None
        per_update.append((offsets, run()))
    gathered = [None, None]
    torch.distributed.all_gather_object(gathered, per_update)
    if rank == 0:
        results.put(gathered)
    torch.distributed.destroy_process_group()


def two_gloo_workers(with_user_dir):
    context = torch.multiprocessing.get_context("spawn")
    results = context.Queue()
    torch.multiprocessing.spawn(layerdrop_worker, args=(compat.free_local_port(), with_user_dir, results), nprocs=2)
    return results.get(timeout=60)


def test_a_stock_transformer_drops_the_same_layers_on_every_rank_while_shape_offsets_differ():
    """Two gloo workers with the user dir loaded: the same layers on both ranks, the ones fairseq's own
    seeding drops in one process; rank 0's SHAPE offsets are one process's, rank 1's its own."""
    from fairseq.utils import set_torch_seed

    from fairseq_plugins.modules.shape import ShiftedSinusoidalPositions

    rank0, rank1 = two_gloo_workers(with_user_dir=True)
    torch.manual_seed(0)
    dictionary, tokens = dictionary_and_tokens()
    run = layers_that_ran(tiny_stock_transformer(dictionary), tokens)
    shape = ShiftedSinusoidalPositions(16, 1, 64, 40).train()
    one_process = []
    for update in range(6):
        set_torch_seed(1 + update)  # fairseq's Trainer._set_seed
        one_process.append((shape.offsets(8, "cpu").view(-1).tolist(), run()))
    layers = [ran for _, ran in one_process]
    assert len(set(map(tuple, layers))) > 1  # LayerDrop did drop layers, differently per update
    assert [ran for _, ran in rank0] == [ran for _, ran in rank1] == layers
    assert [offsets for offsets, _ in rank0] == [offsets for offsets, _ in one_process]
    assert all(offsets0 != offsets1 for (offsets0, _), (offsets1, _) in zip(rank0, rank1))


def fake_broadcast(monkeypatch, payload):
    """fairseq's ``_broadcast_object_slow`` on a rank > 0 that receives ``payload`` (torch.save bytes)."""
    from fairseq.distributed import utils as distributed_utils

    data = torch.frombuffer(bytearray(payload), dtype=torch.uint8)
    received = iter([torch.tensor([len(data)]), data])

    def broadcast(tensor, src, group):
        tensor.copy_(next(received))

    monkeypatch.setattr(distributed_utils, "get_rank", lambda group: 1)
    monkeypatch.setattr(distributed_utils, "broadcast", broadcast)
    return distributed_utils._broadcast_object_slow(None, 0, None, torch.device("cpu"))


def saved(obj):
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def test_the_broadcast_checkpoint_is_unpickled_weights_only(monkeypatch):
    """What rank 0 sends on resume (an OmegaConf config, the file's Namespace and numpy values, tensor
    placeholders) loads on the other ranks; an object outside the allow-list is refused."""
    import numpy as np
    from fairseq.distributed.utils import _split_tensors_from_obj

    state = {"args": argparse.Namespace(arch="transformer"), "model": {"w": torch.ones(2)},
             "cfg": OmegaConf.create({"common": {"seed": 1, "fp16": False}, "task": {"langs": ["en", "de"], "x": None}}),
             "extra_state": {"best_bleu": np.float64(31.4), "history": np.arange(3)}}
    sent = _split_tensors_from_obj(state, [])
    received = fake_broadcast(monkeypatch, saved(sent))
    assert received["cfg"] == sent["cfg"] and received["model"] == sent["model"]
    assert received["extra_state"]["best_bleu"] == 31.4

    class Payload:
        def __reduce__(self):
            return (print, ("unsafe code ran",))

    with pytest.raises(pickle.UnpicklingError):
        fake_broadcast(monkeypatch, saved({"cfg": Payload()}))


def test_spawned_cpu_workers_share_the_cores(monkeypatch):
    from fairseq.distributed import utils as distributed_utils

    cores = compat.usable_cores()
    threads = torch.get_num_threads()
    monkeypatch.setattr(distributed_utils, "distributed_main", lambda index, main, cfg, kwargs: seen.append(torch.get_num_threads()))
    seen = []
    try:
        for omp_threads in (None, "3"):
            torch.set_num_threads(cores)  # a fresh worker's default
            if omp_threads is None:
                monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
            else:
                monkeypatch.setenv("OMP_NUM_THREADS", omp_threads)
            compat.run_cpu_worker(0, None, fairseq_config("--distributed-world-size", 2), {})
    finally:
        torch.set_num_threads(threads)
    assert seen == [max(1, cores // 2), cores]  # the user's OMP_NUM_THREADS is left to torch
