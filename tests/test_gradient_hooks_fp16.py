"""Every hook of the package that reads or writes gradients, through fairseq's own trainer in fp32, --fp16
(flat and unflattened master copies) and --memory-efficient-fp16 (tests/trainer_order.py), compared with
the gradients and weights an fp32 run has: lottery tickets (the regulariser, masked gradients, pruned
weights held at 0) and the training monitor (layer gradient norms, skipped spike updates)."""

import re

import pytest
import torch

from trainer_order import (
    FP16_PRECISIONS, PRECISIONS, applied_gradients, batch, build_trainer, named_parameters, resume, save, stepped_views,
    train_step,
)
from conftest import TINY_MODEL
from fairseq_plugins.modules import pruning

DIGITS = [".", "--task", "ticket_image_classification", "--data-format", "sklearn_digits", "--arch", "image_mlp",
          "--hidden-dim", 32, "--criterion", "cross_entropy", "--optimizer", "adam", "--lr", "1e-3", "--batch-size", 16]
TAU = 0.5
# fp16 keeps 11 significant bits: the regulariser arrives summed with the loss gradient in the scaled fp16 gradient
ATOL = {"fp32": 1e-6, "fp16": 2e-3, "fp16-no-flatten": 2e-3, "memory-efficient-fp16": 2e-3}


def micro_batches(trainer):
    """Two micro-batches of different sample sizes (16 and 8 examples): one update with --update-freq 2."""
    return [batch(trainer, 0, 16), batch(trainer, 16, 8)]


@pytest.fixture(scope="module")
def initial_weights():
    return {name: p.detach().clone() for name, p in named_parameters(build_trainer(DIGITS, "fp32")).items()}


@pytest.fixture(scope="module")
def ticket_files(initial_weights, tmp_path_factory):
    """A mask pruning 30% of each prunable matrix, and a penalty l in {0, 0.5, 1}."""
    generator = torch.Generator().manual_seed(0)
    names = pruning.prunable_names(initial_weights)
    assert names == ["encoder.1.weight", "encoder.4.weight"]
    masks = {name: torch.rand(initial_weights[name].shape, generator=generator) >= 0.3 for name in names}
    penalty = {name: torch.randint(0, 3, initial_weights[name].shape, generator=generator).float() / 2 for name in names}
    directory = tmp_path_factory.mktemp("ticket")
    torch.save(masks, directory / "mask.pt")
    torch.save(penalty, directory / "penalty.pt")
    return {"masks": masks, "penalty": penalty, "mask": str(directory / "mask.pt"), "l": str(directory / "penalty.pt")}


def one_update(precision, *flags):
    trainer = build_trainer(DIGITS + list(flags), precision)
    with applied_gradients(trainer) as applied:
        logged = train_step(trainer, micro_batches(trainer))
    return applied[0], logged


@pytest.mark.parametrize("precision", PRECISIONS)
def test_the_regulariser_reaches_the_update_as_tau_l_sign_theta(precision, ticket_files, initial_weights):
    """The fp32 gradient the optimizer applies, with the regulariser minus without, is tau * l * sign(theta)
    (before the fix: none of it under --fp16, 1 / (loss scale x sample size) of it under
    --memory-efficient-fp16); and it is the gradient of the fp32 run."""
    plain, _ = one_update(precision)
    penalised, logged = one_update(precision, "--ticket-penalty", ticket_files["l"], "--ticket-tau", TAU)
    penalty = ticket_files["penalty"]
    for name, theta in initial_weights.items():
        expected = TAU * penalty[name] * torch.sign(theta) if name in penalty else torch.zeros_like(theta)
        torch.testing.assert_close(penalised[name] - plain[name], expected, rtol=0, atol=ATOL[precision])
    l1 = sum(float((initial_weights[name] * l).abs().sum()) for name, l in penalty.items())
    assert logged["ticket_l1"] == pytest.approx(l1, abs=1e-3)
    if precision != "fp32":
        reference, _ = one_update("fp32", "--ticket-penalty", ticket_files["l"], "--ticket-tau", TAU)
        for name in reference:
            torch.testing.assert_close(penalised[name], reference[name], rtol=0, atol=ATOL[precision])


@pytest.mark.parametrize("precision", PRECISIONS)
def test_pruned_gradients_are_zero_before_clipping_and_not_in_gnorm(precision, ticket_files):
    """--clip-norm and the logged gnorm see the masked gradient, the regulariser included."""
    ticket = ("--ticket-mask", ticket_files["mask"], "--ticket-penalty", ticket_files["l"], "--ticket-tau", TAU)
    unclipped, _ = one_update("fp32", *ticket)
    masks = ticket_files["masks"]
    masked = {name: g * masks[name] if name in masks else g for name, g in unclipped.items()}
    norm = float(torch.sqrt(sum((g.double() ** 2).sum() for g in masked.values())))
    max_norm = norm / 4
    applied, logged = one_update(precision, *ticket, "--clip-norm", max_norm)
    assert logged["gnorm"] == pytest.approx(norm, rel=1e-3)
    for name, gradient in applied.items():
        torch.testing.assert_close(gradient, masked[name] / 4, rtol=0, atol=ATOL[precision] / 4)
        if name in masks:
            assert not gradient[~masks[name]].any()


def assert_pruned_entries_are_zero(trainer, masks):
    """In the model, in what the optimizer steps (the fp32 master under --fp16) and in Adam's moments."""
    held = {"model": named_parameters(trainer), "stepped": stepped_views(trainer)}
    for moment in ("exp_avg", "exp_avg_sq"):
        held[moment] = stepped_views(trainer, lambda stepped, state: state[moment])
    for where, tensors in held.items():
        for name, mask in masks.items():
            assert not tensors[name][~mask].any(), (where, name)
            assert tensors[name][mask].any(), (where, name)


@pytest.mark.parametrize("precision", PRECISIONS)
def test_pruned_weights_stay_zero_in_the_model_the_fp32_masters_and_the_moments(precision, ticket_files):
    """The trainer builds the optimizer (and FP16Optimizer its fp32 master copy) from the dense model;
    the mask applies at the first update. Adam with weight decay, three updates."""
    trainer = build_trainer(DIGITS + ["--ticket-mask", ticket_files["mask"], "--weight-decay", 0.1], precision)
    for update in range(3):
        train_step(trainer, [batch(trainer, 16 * update, 16)])
        assert_pruned_entries_are_zero(trainer, ticket_files["masks"])


@pytest.mark.parametrize("precision", PRECISIONS)
def test_moments_restored_from_a_dense_run_are_zeroed(precision, ticket_files, tmp_path):
    """fairseq-train --restore-file of a dense run (optimizer state kept) with --ticket-mask: Adam's
    moments of the pruned weights are not 0 when the mask applies; left so, they move the weights."""
    dense = build_trainer(DIGITS, precision)
    for update in range(2):
        train_step(dense, [batch(dense, 16 * update, 16)])
    save(dense, tmp_path / "dense.pt")
    trainer = build_trainer(DIGITS + ["--ticket-mask", ticket_files["mask"]], precision)
    resume(trainer, tmp_path / "dense.pt")
    restored = stepped_views(trainer, lambda stepped, state: state["exp_avg"])
    assert all(restored[name][~mask].any() for name, mask in ticket_files["masks"].items())
    train_step(trainer, [batch(trainer, 32, 16)])
    assert_pruned_entries_are_zero(trainer, ticket_files["masks"])


# --- the training monitor -----------------------------------------------------------------------

def monitored(toy_bin, precision, *flags):
    small = list(TINY_MODEL)
    for flag, value in (("--encoder-embed-dim", "32"), ("--decoder-embed-dim", "32"), ("--encoder-ffn-embed-dim", "64"),
                        ("--decoder-ffn-embed-dim", "64")):
        small[small.index(flag) + 1] = value
    return build_trainer([toy_bin, "--task", "monitored_translation", "--arch", "transformer", *small, "--dropout", 0,
                          "--share-all-embeddings", "--criterion", "cross_entropy", "--optimizer", "adam", "--lr", "1e-3",
                          "--max-tokens", 1024, *flags], precision)


def logged_layer_norms(caplog):
    return {stack: [float(value) for value in norms.split()]
            for stack, norms in re.findall(r"layer grad norms \| update \d+ \| (\S+) \| (.*)$", caplog.text, re.M)}


@pytest.mark.parametrize("precision", FP16_PRECISIONS)
def test_layer_grad_norms_under_fp16_are_the_fp32_runs(precision, toy_bin, caplog):
    """Unscaled, normalised by the sample size and clipped (--clip-norm 0.5) as the step applies them."""
    norms = {}
    for mode in ("fp32", precision):
        trainer = monitored(toy_bin, mode, "--layer-grad-norm-interval", 1, "--clip-norm", 0.5)
        caplog.clear()
        with caplog.at_level("INFO", logger="fairseq_plugins.tasks.training_monitor"):
            train_step(trainer, [batch(trainer, 0, 8), batch(trainer, 8, 5)])
        norms[mode] = logged_layer_norms(caplog)
    assert set(norms["fp32"]) == {"encoder.layers", "decoder.layers"}
    for stack, values in norms["fp32"].items():
        assert norms[precision][stack] == pytest.approx(values, rel=2e-2), stack


@pytest.mark.parametrize("precision", PRECISIONS)
def test_a_skipped_spike_update_changes_nothing_and_the_next_update_is_unaffected(precision, toy_bin, monkeypatch):
    """Update 2 is judged a spike and skipped: weights, fp32 masters and moments stay as they were, and
    after update 3 the run equals one that never saw update 2's batch."""
    flags = ("--detect-loss-spikes", "--skip-spike-updates", "--lr-scheduler", "fixed")
    skipping = monitored(toy_bin, precision, *flags)
    untouched = monitored(toy_bin, precision, *flags)
    detector = skipping.task._spike_detector
    judge, judged = detector.update, []

    def judge_the_second_a_spike(loss):
        judged.append(loss)
        return judge(float("inf") if len(judged) == 2 else loss)

    monkeypatch.setattr(detector, "update", judge_the_second_a_spike)
    train_step(skipping, [batch(skipping, 0, 8)])
    train_step(untouched, [batch(untouched, 0, 8)])

    def snapshot(trainer):
        moment = stepped_views(trainer, lambda stepped, state: state["exp_avg"])
        return {**named_parameters(trainer), **{f"master {n}": t for n, t in stepped_views(trainer).items()},
                **{f"exp_avg {n}": t for n, t in moment.items()}}

    before = {name: t.detach().clone() for name, t in snapshot(skipping).items()}
    train_step(skipping, [batch(skipping, 8, 8)])
    assert detector.spikes == 1
    for name, tensor in snapshot(skipping).items():
        assert torch.equal(tensor, before[name]), name
    train_step(skipping, [batch(skipping, 16, 8)])
    train_step(untouched, [batch(untouched, 16, 8)])
    reference = snapshot(untouched)
    for name, tensor in snapshot(skipping).items():
        assert torch.equal(tensor, reference[name]), name
