"""mixup_cross_entropy and dip_cross_entropy through fairseq-train, fairseq-validate and
fairseq-plugins-dip-evaluate on sklearn digits; DIP's reference pool travels in the checkpoint."""

import json
import re

import pytest
import torch

from conftest import USER_DIR, one_line_error, run_cli
from fairseq_plugins.criterions.dip_cross_entropy import DipCrossEntropyConfig, DipCrossEntropyCriterion
from fairseq_plugins.criterions.mixup_cross_entropy import MixupCrossEntropyConfig, MixupCrossEntropyCriterion
from fairseq_plugins.errors import ConfigError

TRAIN = [".", "--user-dir", USER_DIR, "--task", "image_classification", "--data-format", "sklearn_digits",
         "--arch", "image_mlp", "--hidden-dim", 64, "--optimizer", "adam", "--lr", "2e-3", "--batch-size", 64,
         "--num-workers", 0, "--no-progress-bar", "--log-format", "simple", "--no-epoch-checkpoints", "--max-epoch", 2]
DIP = ["--criterion", "dip_cross_entropy", "--dip-pool-size", 100, "--dip-train-samples", 2, "--dip-eval-samples", 5]


def valid_accuracies(result):
    return re.findall(r"valid on 'valid' subset .*?accuracy ([\d.]+)", result.stdout + result.stderr)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("dip-digits")
    accuracy = {}
    for name, criterion in (("mixup", ["--criterion", "mixup_cross_entropy", "--mixup-alpha", 0.4]), ("dip", DIP)):
        result = run_cli("fairseq-train", *TRAIN, *criterion, "--save-dir", root / name, cwd=root)
        accuracy[name] = valid_accuracies(result)[-1]
    return root, accuracy


def validate(root, name, *flags, check=True):
    return run_cli("fairseq-validate", ".", "--user-dir", USER_DIR, "--task", "image_classification",
                   "--path", root / name / "checkpoint_last.pt", "--batch-size", 37, "--num-workers", 0, *flags,
                   cwd=root, check=check)


def test_dip_checkpoint_reproduces_its_validation_accuracy(trained):
    root, accuracy = trained
    assert valid_accuracies(validate(root, "dip")) == [accuracy["dip"]]  # other batch size, new process
    pool = torch.load(root / "dip" / "checkpoint_last.pt")["model"]["reference_pool.images"]
    assert pool.shape == (100, 1, 8, 8)  # --dip-pool-size training images, in the checkpoint
    assert float(accuracy["dip"]) > 30


def test_mixup_checkpoint_reproduces_its_validation_accuracy(trained):
    root, accuracy = trained
    assert valid_accuracies(validate(root, "mixup")) == [accuracy["mixup"]]


def test_evaluate_command_matches_fairseq_validate(trained):
    root, accuracy = trained
    s_one = valid_accuracies(validate(root, "dip", "--criterion", "dip_cross_entropy", "--dip-eval-samples", 1))
    result = run_cli("fairseq-plugins-dip-evaluate", ".", "--dip", root / "dip" / "checkpoint_last.pt",
                     "--baseline", f"mixup={root / 'mixup' / 'checkpoint_last.pt'}", "--valid-subset", "valid",
                     "--dip-eval-samples", "1,5", "--json", cwd=root)
    results = json.loads(result.stdout)
    assert results["examples"] == 270
    # fairseq prints accuracy rounded to 2 decimals (trailing zeros dropped)
    assert round(results["dip"]["samples"]["5"]["mean"], 2) == float(accuracy["dip"])
    assert [round(results["dip"]["samples"]["1"]["mean"], 2)] == [float(a) for a in s_one]
    assert round(results["baselines"]["mixup"]["mean"], 2) == float(accuracy["mixup"])


@pytest.mark.parametrize("flags, message", [
    (["--criterion", "mixup_cross_entropy", "--mixup-alpha", 0], "--mixup-alpha must be > 0 (got 0.0)"),
    (["--criterion", "dip_cross_entropy", "--dip-eval-samples", 0], "--dip-eval-samples must be >= 1 (got 0)"),
])
def test_bad_criterion_flags_are_one_line(tmp_path, flags, message):
    result = run_cli("fairseq-train", *TRAIN, *flags, "--save-dir", tmp_path, cwd=tmp_path, check=False)
    one_line_error(result, message)


@pytest.mark.parametrize("flags, message", [
    (dict(dip_alpha=0.0), "--dip-alpha must be > 0 (got 0.0)"),
    (dict(dip_train_samples=0), "--dip-train-samples must be >= 1 (got 0)"),
    (dict(dip_pool_size=0), "--dip-pool-size must be >= 1 (got 0)"),
])
def test_bad_dip_flags(flags, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        DipCrossEntropyCriterion(DipCrossEntropyConfig(**flags), task=None)


def test_criteria_need_a_mixing_point():
    criterion = MixupCrossEntropyCriterion(MixupCrossEntropyConfig(), task=None)
    model = torch.nn.Linear(4, 2)
    with pytest.raises(ConfigError, match="--criterion mixup_cross_entropy needs a model that declares its mixing point"):
        criterion(model, {"net_input": {"images": torch.zeros(1, 4)}, "target": torch.zeros(1, dtype=torch.long)})


def test_dip_evaluation_of_a_checkpoint_without_pool_is_one_line(trained):
    root, _ = trained
    result = run_cli("fairseq-plugins-dip-evaluate", ".", "--dip", root / "mixup" / "checkpoint_last.pt",
                     "--valid-subset", "valid", cwd=root, check=False)
    one_line_error(result, "trained with --criterion mixup_cross_entropy, not dip_cross_entropy")


def test_evaluate_command_rejects_bad_samples(tmp_path):
    result = run_cli("fairseq-plugins-dip-evaluate", ".", "--dip", "x.pt", "--dip-eval-samples", "4,0", check=False)
    one_line_error(result, "--dip-eval-samples 4,0: give integers >= 1")
