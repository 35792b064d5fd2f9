"""Data-parallel training through fairseq's own launchers (compat.data_parallel.distributed_training_on_this_stack).

Two gloo workers on CPU must train exactly as one process with ``--update-freq 2`` (fairseq
shards batch i to worker i mod 2, and one process groups batches 2k and 2k+1 into update k), for
fairseq's own spawning (``--distributed-world-size 2``) and for ``torchrun``; a checkpoint moves
between world sizes at an epoch boundary; and every rank draws its own random numbers.
"""

import os
import re
import shutil
import subprocess
from collections import Counter

import pytest
import torch

from conftest import BIN_DIR, TINY_MODEL, USER_DIR, build_through_namespace_api, one_line_error, run_cli

COMMON = (
    "--optimizer adam --lr 2e-3 --lr-scheduler inverse_sqrt --warmup-updates 10 --max-tokens 1024 "
    "--log-format simple --log-interval 1 --seed 1 --no-progress-bar --cpu --num-workers 0"
).split()
TRANSLATION = ["--user-dir", USER_DIR, "--arch", "b2t_transformer", *TINY_MODEL, "--share-all-embeddings",
               "--embeddings", "alone", "--positions", "shape", "--shape-max-shift", 0, "--dropout", 0,
               "--criterion", "label_smoothed_cross_entropy", "--label-smoothing", 0.1, *COMMON]


def train(data, save_dir, *flags, launcher="one process"):
    """fairseq-train as one process with --update-freq 2, or as two workers ('spawn', 'torchrun')."""
    args = [data, *flags, "--save-dir", save_dir]
    if launcher == "one process":
        result = run_cli("fairseq-train", *args, "--update-freq", 2)
    elif launcher == "spawn":
        result = run_cli("fairseq-train", *args, "--distributed-world-size", 2)
    else:
        command = [os.path.join(BIN_DIR, "torchrun"), "--standalone", "--nproc_per_node", "2",
                   os.path.join(BIN_DIR, "fairseq-train"), *map(str, args)]
        result = subprocess.run(command, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr[-5000:]
    log = result.stdout + result.stderr
    if launcher != "one process":
        # Both workers joined one process group and trained on half an epoch each.
        assert "distributed init (rank 0)" in log and "distributed init (rank 1)" in log, log[-3000:]
        assert "training on 2 devices" in log, log[-3000:]
    return log


def losses_by_update(log):
    return {int(update): float(loss) for loss, update in re.findall(r"train_inner \|.* loss=([\d.]+),.* num_updates=(\d+),", log)}


def batches_per_epoch(log):
    return int(re.search(r"epoch 001:\s+\d+ / (\d+)", log).group(1))


def assert_same_weights(path_a, path_b):
    a = torch.load(path_a, map_location="cpu", weights_only=False)["model"]
    b = torch.load(path_b, map_location="cpu", weights_only=False)["model"]
    assert a.keys() == b.keys()
    differ = {}
    for name in a:
        # A key bias adds q.b_k to every score of a query, which the softmax removes: its gradient is
        # zero up to rounding, and Adam scales that rounding (summed in a thread-count-dependent
        # order) into lr-sized steps. It cannot change the output, so it is not compared.
        if name.endswith("k_proj.bias"):
            continue
        if a[name].is_floating_point() and not torch.allclose(a[name], b[name], rtol=1e-4, atol=1e-5):
            differ[name] = (a[name] - b[name]).abs().max().item()
    assert not differ, differ


def resume(checkpoint, save_dir):
    save_dir.mkdir()
    shutil.copy(checkpoint, save_dir / "checkpoint_last.pt")
    return save_dir


@pytest.mark.slow
def test_two_workers_train_as_one_process_and_checkpoints_move_between_world_sizes(toy_bin, tmp_path):
    """b2t + ALONE + SHAPE with K = 0: epoch 1 as one process and as two spawned workers; epoch 2
    resumed from each in the other world size (torchrun for two) and in the same one."""
    one, two = tmp_path / "one", tmp_path / "two"
    log_one = train(toy_bin, one, *TRANSLATION, "--max-epoch", 1)
    log_two = train(toy_bin, two, *TRANSLATION, "--max-epoch", 1, "--num-workers", 1, launcher="spawn")
    assert "leaked semaphore" not in log_two  # the workers' data loaders fork, as one process's do

    # Each worker read half of the epoch's batches (fairseq's sharding), and each update equals one
    # process's update over the same two batches: ALONE filters and the data agree across ranks.
    per_update_one, per_update_two = losses_by_update(log_one), losses_by_update(log_two)
    assert batches_per_epoch(log_two) == batches_per_epoch(log_one) == len(per_update_two) == len(per_update_one)
    assert per_update_two == pytest.approx(per_update_one, abs=2e-3)
    assert_same_weights(one / "checkpoint_last.pt", two / "checkpoint_last.pt")

    # fairseq's resume at an epoch boundary is not bit-identical to an uninterrupted run, so epoch 2
    # is compared with one process resuming one process's checkpoint.
    reference = resume(one / "checkpoint_last.pt", tmp_path / "one-then-one")
    train(toy_bin, reference, *TRANSLATION, "--max-epoch", 2)
    two_then_one = resume(two / "checkpoint_last.pt", tmp_path / "two-then-one")
    train(toy_bin, two_then_one, *TRANSLATION, "--max-epoch", 2)
    assert_same_weights(reference / "checkpoint_last.pt", two_then_one / "checkpoint_last.pt")
    one_then_two = resume(one / "checkpoint_last.pt", tmp_path / "one-then-two")
    log = train(toy_bin, one_then_two, *TRANSLATION, "--max-epoch", 2, launcher="torchrun")
    assert min(losses_by_update(log)) == len(per_update_one) + 1  # resumed after epoch 1
    assert_same_weights(reference / "checkpoint_last.pt", one_then_two / "checkpoint_last.pt")


@pytest.mark.slow
def test_turnover_masks_follow_the_instance_to_whichever_worker_reads_it(tmp_path):
    from test_influence_sentence_prediction import sentence_data

    data = sentence_data(tmp_path)
    flags = ["--user-dir", USER_DIR, "--task", "sentence_prediction", "--num-classes", 2, "--arch",
             "turnover_transformer_classifier", "--encoder-layers", 2, "--encoder-embed-dim", 128,
             "--encoder-ffn-embed-dim", 256, "--encoder-attention-heads", 4, "--max-positions", 32, "--dropout", 0,
             "--criterion", "turnover_cross_entropy", "--batch-size", 16, "--max-epoch", 1, *COMMON]
    log_one = train(data, tmp_path / "one", *flags)
    log_two = train(data, tmp_path / "two", *flags, launcher="torchrun")
    assert losses_by_update(log_two) == pytest.approx(losses_by_update(log_one), abs=2e-3)
    assert_same_weights(tmp_path / "one" / "checkpoint_last.pt", tmp_path / "two" / "checkpoint_last.pt")


@pytest.mark.slow
def test_spike_skips_are_decided_alike_on_every_worker(toy_raw, tmp_path):
    """A learning rate that spikes: the all-reduced loss makes both workers skip the same updates
    (a rank that skipped alone would diverge from the one-process run)."""
    lm_bin = tmp_path / "lm-bin"
    run_cli("fairseq-preprocess", "--only-source", "--trainpref", f"{toy_raw}/train.xx", "--validpref",
            f"{toy_raw}/valid.xx", "--destdir", lm_bin, "--workers", "1")
    flags = ["--user-dir", USER_DIR, "--arch", "spike_transformer_lm_tiny", "--task", "monitored_language_modeling",
             "--tokens-per-sample", 64, "--embed-treatment", "vanilla", "--dropout", 0, "--detect-loss-spikes",
             "--spike-min-history", 3, "--spike-window", 10, "--spike-factor", 1.2, "--skip-spike-updates",
             "--layer-grad-norm-interval", 4,
             "--max-update", 12, "--disable-validation", *COMMON]
    flags[flags.index("--lr") + 1] = 0.3
    flags[flags.index("--warmup-updates") + 1] = 1
    log_one = train(lm_bin, tmp_path / "one", *flags)
    log_two = train(lm_bin, tmp_path / "two", *flags, launcher="spawn")
    skipped = re.compile(r"loss spike at update (\d+)")
    assert skipped.findall(log_one), log_one[-3000:]
    # Each worker reports (and skips) the same updates as the one process.
    assert Counter(skipped.findall(log_two)) == Counter(2 * skipped.findall(log_one))
    assert_same_weights(tmp_path / "one" / "checkpoint_last.pt", tmp_path / "two" / "checkpoint_last.pt")


@pytest.mark.parametrize("draw", ["shape offsets", "mixing generator"])
def test_each_rank_draws_its_own_shape_offsets_and_mixing_weights(monkeypatch, draw):
    """fairseq reseeds every rank with seed + num_updates; the package's own draws are rank 0's as in
    one process, every other rank's of its own, and torch's stream after them agrees on every rank
    (what dropout and LayerDrop draw next)."""
    from fairseq_plugins.criterions.mixup_cross_entropy import generator_from_trainer_seed
    from fairseq_plugins.modules import rank_streams
    from fairseq_plugins.modules.shape import ShiftedSinusoidalPositions

    positions = ShiftedSinusoidalPositions(16, 1, 64, 40, "max").train()
    draws = {"shape offsets": lambda: positions.offsets(64, "cpu").view(-1).tolist(),
             "mixing generator": lambda: generator_from_trainer_seed().random(4).tolist()}

    def draws_of_rank(rank):
        monkeypatch.setattr(rank_streams, "this_rank", lambda: rank)
        torch.manual_seed(1 + 7)
        return draws[draw](), torch.rand(4).tolist()

    (rank0, next0), (rank1, next1) = draws_of_rank(0), draws_of_rank(1)
    assert rank0 != rank1 and next0 == next1
    assert draws_of_rank(1)[0] == rank1  # reproducible after fairseq's reseeding
    assert draws_of_rank(2)[0] not in (rank0, rank1)
    monkeypatch.undo()
    torch.manual_seed(1 + 7)
    assert draws[draw]() == rank0  # one process


@pytest.mark.parametrize("task, arch, flags", [
    ("length_controlled_translation", "b2t_transformer", ("--positions", "ldpe")),
    ("image_classification", "image_mlp", ("--data-format", "sklearn_digits")),
])
def test_two_shards_read_every_training_example_once(toy_bin, task, arch, flags):
    from fairseq import tasks

    args, _ = build_through_namespace_api("." if "sklearn_digits" in flags else toy_bin, task, arch, *flags)
    task = tasks.setup_task(args)
    task.load_dataset("train")
    dataset = task.dataset("train")
    seen = []
    for shard in (0, 1):
        batches = task.get_batch_iterator(dataset, max_tokens=1024, max_sentences=32, seed=1, num_shards=2,
                                          shard_id=shard, epoch=1, disable_iterator_cache=True).next_epoch_itr(shuffle=True)
        seen += [int(i) for batch in batches if batch for i in batch["id"]]
    assert sorted(seen) == list(range(len(dataset)))


def test_a_world_size_that_cannot_start_is_one_line(toy_bin, tmp_path):
    result = run_cli("fairseq-train", toy_bin, *TRANSLATION, "--distributed-world-size", os.cpu_count() + 1,
                     "--save-dir", tmp_path, check=False)
    one_line_error(result, f"--distributed-world-size {os.cpu_count() + 1}", f"{os.cpu_count()} CPU cores")


def test_a_world_size_other_than_the_launchers_is_one_line(toy_bin, tmp_path):
    env = dict(os.environ, MASTER_ADDR="localhost", MASTER_PORT="29511", WORLD_SIZE="2", RANK="0", LOCAL_RANK="0",
               TORCHELASTIC_RUN_ID="test", LOCAL_WORLD_SIZE="2")
    result = subprocess.run([os.path.join(BIN_DIR, "fairseq-train"), toy_bin, *map(str, TRANSLATION),
                             "--distributed-world-size", "3", "--save-dir", tmp_path], capture_output=True, text=True, env=env)
    one_line_error(result, "--distributed-world-size 3", "launcher started 2 processes")
