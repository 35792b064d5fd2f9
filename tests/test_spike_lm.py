"""The decoder-only family (``composable_transformer_lm``, ``spike_transformer_lm*``), training
monitoring (``monitored_*`` tasks), embeddings out of weight decay and the width analysis, through
fairseq-train, fairseq-eval-lm and fairseq-plugins-gradnorm."""

import json
import math
import os
import re

import pytest
import torch

from conftest import TRAIN_FLAGS, USER_DIR, one_line_error, run_cli
from fairseq_plugins.cli.dataless import model_from_flags

LM_TRAIN = (
    "--task monitored_language_modeling --tokens-per-sample 64 --max-tokens 1024 --optimizer adam "
    "--lr-scheduler inverse_sqrt --warmup-updates 10 --log-format simple --log-interval 10 --no-progress-bar --seed 1"
).split()
WIDTHS = (128, 256, 512, 1024)


def lm(arch, *flags, seed=1):
    torch.manual_seed(seed)
    return model_from_flags(["--arch", arch, *map(str, flags)], 300, task="language_modeling")


@pytest.fixture(scope="session")
def lm_bin(toy_raw, tmp_path_factory):
    """The toy corpus's target side as language-model data."""
    dest = tmp_path_factory.mktemp("lm-bin")
    run_cli("fairseq-preprocess", "--only-source", "--trainpref", f"{toy_raw}/train.xx",
            "--validpref", f"{toy_raw}/valid.xx", "--testpref", f"{toy_raw}/test.xx",
            "--destdir", dest, "--workers", "1")
    return str(dest)


@pytest.fixture(scope="module")
def monitored_run(lm_bin, tmp_path_factory):
    save_dir = tmp_path_factory.mktemp("lm-ckpt")
    result = run_cli(
        "fairseq-train", lm_bin, "--user-dir", USER_DIR, "--arch", "spike_transformer_lm_tiny", *LM_TRAIN,
        "--lr", "1e-3", "--max-update", 30, "--detect-loss-spikes", "--layer-grad-norm-interval", 10,
        "--no-weight-decay-embeddings", "--weight-decay", 0.01, "--save-dir", save_dir, "--no-epoch-checkpoints",
    )
    return save_dir, result.stdout + result.stderr


def grad_norm_lines(log, stack):
    return [line.split("|")[-1].split() for line in log.splitlines() if "layer grad norms" in line
            and f"| {stack} |" in line]


def test_spike_preset_is_the_papers_setting_with_small_init_stds():
    dim, layers = 256, 4
    model = lm("spike_transformer_lm", "--decoder-embed-dim", dim, "--decoder-ffn-embed-dim", 4 * dim,
               "--decoder-layers", layers, "--decoder-attention-heads", 4)
    decoder = model.decoder
    assert all(layer.normalize_before for layer in decoder.layers)
    assert type(decoder.embed_positions).__name__ == "LearnedPositionalEmbedding"
    assert decoder.layers[0].activation_fn.__name__ == "gelu"
    assert decoder.output_projection.weight is decoder.embed_tokens.weight
    assert decoder.embed_scale == math.sqrt(dim)  # scaled embeddings
    small = math.sqrt(2 / (5 * dim))
    params = dict(model.named_parameters())

    def pooled_std(suffix):
        return torch.cat([p.flatten() for name, p in params.items() if name.endswith(suffix)]).std().item()

    assert pooled_std("embed_tokens.weight") == pytest.approx(small, rel=0.05)
    for suffix in ("q_proj.weight", "v_proj.weight", "fc1.weight"):
        assert pooled_std(suffix) == pytest.approx(small, rel=0.05), suffix
    for suffix in ("out_proj.weight", "fc2.weight"):
        assert pooled_std(suffix) == pytest.approx(small / math.sqrt(2 * layers), rel=0.05), suffix


def test_family_defaults_are_fairseqs_transformer_lm_bit_for_bit():
    dims = ["--decoder-embed-dim", 64, "--decoder-input-dim", 64, "--decoder-output-dim", 64,
            "--decoder-ffn-embed-dim", 128, "--decoder-layers", 2, "--decoder-attention-heads", 4]
    stock, ours = lm("transformer_lm", *dims, seed=4), lm("composable_transformer_lm", *dims, seed=4)
    assert stock.state_dict().keys() == ours.state_dict().keys()
    assert all(torch.equal(a, b) for a, b in zip(stock.state_dict().values(), ours.state_dict().values()))
    tokens = torch.randint(4, 300, (3, 11))
    stock.eval(), ours.eval()
    assert torch.equal(stock(tokens)[0], ours(tokens)[0])


def test_paper_presets_have_the_papers_sizes():
    with torch.device("meta"):  # shapes only: no memory, no init
        sizes = {arch: sum(p.numel() for p in model_from_flags(["--arch", arch], 50257, "language_modeling")
                           .parameters()) / 1e9 for arch in ("spike_transformer_lm_350m", "spike_transformer_lm_1_7b")}
    assert sizes["spike_transformer_lm_350m"] == pytest.approx(0.35, abs=0.01)
    assert sizes["spike_transformer_lm_1_7b"] == pytest.approx(1.65, abs=0.03)


def test_monitored_lm_trains_and_fairseq_eval_lm_reproduces_its_validation(monitored_run, lm_bin):
    save_dir, log = monitored_run
    valid_loss = float(re.findall(r"valid on 'valid' subset \| loss ([\d.]+)", log)[-1])  # base 2, at update 30
    result = run_cli("fairseq-eval-lm", lm_bin, "--user-dir", USER_DIR, "--path", f"{save_dir}/checkpoint_last.pt",
                     "--tokens-per-sample", 64, "--max-tokens", 1024, "--gen-subset", "valid")
    loss = float(re.search(r"Loss \(base 2\): ([\d.]+)", result.stdout + result.stderr).group(1))
    assert loss == pytest.approx(valid_loss, abs=2e-3)  # the reloaded model is the trained one
    vocabulary = sum(1 for _ in open(os.path.join(lm_bin, "dict.txt"))) + 4
    assert 2 ** loss < vocabulary / 1.5  # it learned something: uniform guessing scores the vocabulary size


def test_layer_grad_norms_are_logged_every_n_updates(monitored_run):
    _, log = monitored_run
    lines = grad_norm_lines(log, "decoder.layers")
    assert len(lines) == 3  # updates 10, 20, 30
    assert all(len(norms) == 2 and all(float(n) > 0 for n in norms) for norms in lines)


def test_spike_counts_are_fairseq_metrics(monitored_run):
    _, log = monitored_run
    counts = re.findall(r"loss_spikes[= ](\d+)", log)
    assert counts and all(count == "0" for count in counts)  # a sane learning rate: no spikes


def test_embeddings_are_kept_out_of_weight_decay(monitored_run):
    save_dir, _ = monitored_run
    state = torch.load(os.path.join(save_dir, "checkpoint_last.pt"), weights_only=False)
    groups = sorted((group["weight_decay"], len(group["params"])) for group in state["last_optimizer_state"]["param_groups"])
    assert groups[0] == (0.0, 2)  # token and learned position embeddings (the output projection is tied)
    assert groups[1][0] == 0.01 and len(groups) == 2


def test_a_high_learning_rate_spikes_and_the_update_is_skipped(lm_bin, tmp_path):
    result = run_cli(
        "fairseq-train", lm_bin, "--user-dir", USER_DIR, "--arch", "spike_transformer_lm_tiny", *LM_TRAIN,
        "--embed-treatment", "vanilla", "--lr", 0.3, "--warmup-updates", 1, "--max-update", 12, "--no-save",
        "--detect-loss-spikes", "--spike-min-history", 3, "--spike-window", 10, "--skip-spike-updates",
        "--disable-validation",
    )
    log = result.stdout + result.stderr
    assert re.search(r"loss spike at update \d+: loss [\d.]+ > 2.0 x median [\d.]+; update skipped", log), log[-3000:]
    epoch_line = [line for line in log.splitlines() if "| train | epoch" in line][-1]
    assert int(re.search(r"loss_spikes (\d+)", epoch_line).group(1)) >= 1


def test_monitored_translation_logs_both_stacks(toy_bin):
    result = run_cli(
        "fairseq-train", toy_bin, "--user-dir", USER_DIR, "--task", "monitored_translation", "--arch",
        "b2t_transformer", *TRAIN_FLAGS, "--max-update", 4, "--layer-grad-norm-interval", 2, "--no-save",
        "--disable-validation",
    )
    log = result.stdout + result.stderr
    assert len(grad_norm_lines(log, "encoder.layers")) == len(grad_norm_lines(log, "decoder.layers")) == 2


@pytest.mark.parametrize("flags, expected", [
    (["--skip-spike-updates"], "--skip-spike-updates needs --detect-loss-spikes"),
    (["--detect-loss-spikes", "--spike-factor", 1], "--spike-factor must be > 1"),
    (["--layer-grad-norm-interval", -1], "--layer-grad-norm-interval must be >= 0"),
    (["--decoder-input-dim", 64], "--decoder-input-dim must equal --decoder-embed-dim"),
])
def test_bad_monitor_and_model_flags_fail_with_one_line(lm_bin, flags, expected):
    result = run_cli("fairseq-train", lm_bin, "--user-dir", USER_DIR, "--arch", "spike_transformer_lm_tiny",
                     *LM_TRAIN, "--lr", "1e-3", "--max-update", 1, "--no-save", *flags, check=False)
    one_line_error(result, expected)


@pytest.fixture(scope="module")
def width_analysis():
    result = run_cli("fairseq-plugins-gradnorm", "--task", "language_modeling", "--arch", "spike_transformer_lm",
                     "--decoder-layers", 1, "--batch-size", 4, "--tgt-len", 32, "--widths", *WIDTHS, "--json")
    return json.loads(result.stdout)


def column(rows, key):
    return [row[key]["decoder"] if isinstance(row[key], dict) else row[key] for row in rows]


def test_vanilla_shortcut_std_falls_like_the_small_init_std(width_analysis):
    """std = sqrt(2/(5d) + 1/d): token embeddings plus fairseq's learned positions (std d^-1/2), both ~d^-1/2."""
    stds = column(width_analysis["vanilla"], "shortcut_std")
    for width, std in zip(WIDTHS, stds):
        assert std == pytest.approx(math.sqrt(2 / (5 * width) + 1 / width), rel=0.05)


def test_vanilla_bound_grows_with_width_and_the_fixes_stay_flat(width_analysis):
    vanilla = column(width_analysis["vanilla"], "first_bound_term")
    assert all(b > a for a, b in zip(vanilla, vanilla[1:]))
    # the spectral norms' product does not depend on d, so the term follows 1/std: x sqrt(8) from 128 to 1024
    assert vanilla[-1] / vanilla[0] == pytest.approx(math.sqrt(WIDTHS[-1] / WIDTHS[0]), rel=0.1)
    for treatment in ("scaled", "layernorm"):
        rows = width_analysis[treatment]
        for key in ("shortcut_std", "first_bound_term", "mean_bound_term"):
            values = column(rows, key)
            # Measured: max/min <= 1.03. What is left is finite-size noise of the random matrices' spectral
            # norms (relative O(d^-2/3)) and the positions' 1/d share of the shortcut's variance.
            assert max(values) / min(values) < 1.1, (treatment, key, values)


class StandInTask:
    """What the monitor's hooks call of a fairseq task: ``train_step`` returns the given loss."""

    def __init__(self, cfg):
        self.cfg = cfg

    def build_model(self, cfg, from_checkpoint=False):
        return torch.nn.Linear(2, 1)

    def train_step(self, sample, model, criterion, optimizer, update_num, ignore_grad=False):
        return sample, 1, {}

    def optimizer_step(self, optimizer, model, update_num):
        optimizer.step()


def monitored_stand_in(**flags):
    from argparse import Namespace

    from fairseq_plugins.tasks.training_monitor import TrainingMonitorConfig, TrainingMonitorMixin

    cfg = Namespace(**{**vars(TrainingMonitorConfig()), **flags})
    task = type("MonitoredStandIn", (TrainingMonitorMixin, StandInTask), {})(cfg)
    model = task.build_model(cfg)
    return task, model, torch.optim.SGD(model.parameters(), lr=0.1)


def run_updates(task, model, optimizer, losses_in_bits):
    """One update per loss; returns the updates whose step changed the parameters."""
    applied = []
    for update, bits in enumerate(losses_in_bits):
        before = model.weight.detach().clone()
        model.weight.grad = None  # fairseq's zero_grad before each update
        task.train_step(torch.tensor(bits * math.log(2)), model, None, optimizer, update)
        model.weight.grad = torch.ones_like(model.weight)  # the backward inside train_step
        task.optimizer_step(optimizer, model, update)
        if not torch.equal(before, model.weight):
            applied.append(update + 1)
    return applied


def test_a_spiked_update_is_not_applied():
    task, model, optimizer = monitored_stand_in(detect_loss_spikes=True, skip_spike_updates=True,
                                                spike_min_history=3)
    applied = run_updates(task, model, optimizer, [4.0, 3.9, 3.8, 9.0, 3.7, float("nan"), 3.6])
    assert applied == [1, 2, 3, 5, 7]  # 9.0 > 2 x median and the nan are skipped
    assert task._spike_detector.spikes == 2


def test_monitoring_off_records_nothing_and_steps_as_fairseq():
    task, model, optimizer = monitored_stand_in()
    assert run_updates(task, model, optimizer, [4.0, 9.0, float("nan")]) == [1, 2, 3]
    assert task._spike_detector is None and task._update_loss == []


def test_an_update_dropped_before_its_optimizer_step_does_not_merge_into_the_next():
    """fp16 overflow: fairseq skips optimizer_step; the next update must judge its own loss alone."""
    task, model, optimizer = monitored_stand_in(detect_loss_spikes=True, spike_min_history=3)
    run_updates(task, model, optimizer, [4.0, 4.0, 4.0, 4.0])
    model.weight.grad = None
    task.train_step(torch.tensor(100.0 * math.log(2)), model, None, optimizer, 4)  # overflowed: no optimizer_step
    assert run_updates(task, model, optimizer, [4.0]) == [1]
    assert task._spike_detector.spikes == 0


def test_a_rank_without_losses_still_joins_the_all_reduce(monkeypatch):
    """At an epoch's end fairseq gives some ranks only dummy batches (ignore_grad); skipping the
    collective there would leave the other ranks waiting forever."""
    task, model, optimizer = monitored_stand_in(detect_loss_spikes=True, skip_spike_updates=True)
    reduced = []

    def all_reduce(tensor):
        reduced.append(tensor.clone())
        tensor += torch.tensor([50.0 * 3 * math.log(2), 3.0], dtype=tensor.dtype)  # the other rank: 3 units at 50 bits

    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.distributed, "all_reduce", all_reduce)
    model.weight.grad = None
    task.train_step(torch.tensor(1.0), model, None, optimizer, 0, ignore_grad=True)
    task.optimizer_step(optimizer, model, 0)
    assert len(reduced) == 1 and reduced[0].tolist() == [0.0, 0.0]
    assert list(task._spike_detector._history) == [50.0]  # the decision is the other rank's loss, as there


def test_layer_grad_norms_divide_out_the_fp16_loss_scale(caplog):
    """fairseq's FP16Optimizer keeps the scaled, unclipped gradients in the model until its step and
    applies the factor lazily; the logged norms are the ones the step will apply."""
    import re
    from argparse import Namespace

    from fairseq_plugins.tasks.training_monitor import TrainingMonitorConfig, TrainingMonitorMixin

    class StandInWithLayers(StandInTask):
        def build_model(self, cfg, from_checkpoint=False):
            model = torch.nn.Module()
            model.layers = torch.nn.ModuleList([torch.nn.Linear(2, 2, bias=False)])
            return model

    cfg = Namespace(**{**vars(TrainingMonitorConfig()), "layer_grad_norm_interval": 1})
    task = type("Monitored", (TrainingMonitorMixin, StandInWithLayers), {})(cfg)
    model = task.build_model(cfg)
    model.layers[0].weight.grad = torch.full((2, 2), 1024.0 * 0.5)  # loss scale 1024, true gradient 0.5 each
    fp16_optimizer = Namespace(_multiply_factor=torch.tensor(1.0 / 1024))  # what FP16Optimizer holds before its step
    with caplog.at_level("INFO", logger="fairseq_plugins.tasks.training_monitor"):
        task._log_layer_grad_norms(model, fp16_optimizer, 1)
    assert re.search(r"\| layers \| 1$", caplog.text, re.M), caplog.text  # the norm of a 2x2 matrix of 0.5
