"""Task extensions stack: a monitored ticket run through the real fairseq-train, both hooks active."""

import re

import torch

from conftest import USER_DIR, run_cli

DIGITS = ["--user-dir", USER_DIR, "--data-format", "sklearn_digits", "--arch", "image_mlp", "--hidden-dim", 32,
          "--criterion", "cross_entropy", "--batch-size", 64, "--num-workers", 0, "--optimizer", "adam", "--lr", 2e-3,
          "--max-update", 6, "--no-progress-bar", "--log-format", "simple", "--log-interval", 1, "--cpu",
          "--disable-validation", "--no-epoch-checkpoints"]
PRUNED_WEIGHT = "encoder.1.weight"  # image_mlp: Flatten, then the hidden layer (32 units, 64 pixels)


def test_monitored_ticket_task_runs_the_monitor_and_the_ticket_hooks(tmp_path):
    mask = torch.ones(32, 64, dtype=torch.bool)
    mask[:, ::2] = False
    torch.save({PRUNED_WEIGHT: mask}, tmp_path / "mask.pt")
    result = run_cli("fairseq-train", ".", *DIGITS, "--task", "monitored_ticket_image_classification",
                     "--ticket-mask", tmp_path / "mask.pt", "--ticket-random-penalty", 0.5, "--ticket-tau", 1e-3,
                     "--detect-loss-spikes", "--spike-min-history", 2, "--save-dir", tmp_path / "ckpt", cwd=tmp_path)
    log = result.stdout + result.stderr
    inner = re.findall(r"train_inner \|.*", log)
    assert len(inner) == 6, log[-3000:]
    # the monitor counts spikes on every update; the ticket regulariser logs its L1 term
    assert all("loss_spikes=" in line and "ticket_l1=" in line for line in inner), inner
    weight = torch.load(tmp_path / "ckpt" / "checkpoint_last.pt", map_location="cpu", weights_only=False)["model"][PRUNED_WEIGHT]
    assert torch.all(weight[~mask] == 0) and torch.all(weight[mask] != 0)
