"""Spike monitor (modules/spike_monitor.py): the loss-spike rule, its history and state, per-layer grad norms."""

import collections
import json
import math
import random
import statistics

import pytest
import torch
from torch import nn

from fairseq_plugins.modules.spike_monitor import LossSpikeDetector, layer_grad_norms


def synthetic_losses(steps, spikes, seed=0):
    """A decaying training loss with noise; the losses at ``spikes`` (step -> value or multiplier) replaced."""
    rng = random.Random(seed)
    losses = []
    for t in range(steps):
        loss = 2.0 + 8.0 * math.exp(-t / 300) + rng.gauss(0.0, 0.05)
        spike = spikes.get(t)
        if spike is not None:
            loss = spike if isinstance(spike, float) and not math.isfinite(spike) else loss * spike
        losses.append(loss)
    return losses


INJECTED = {40: 3.0, 200: 2.5, 201: 4.0, 202: 3.0, 500: float("nan"), 700: float("inf"), 850: 10.0, 999: 2.2}


def test_exactly_the_injected_spikes_are_flagged():
    losses = synthetic_losses(1000, INJECTED)
    detector = LossSpikeDetector(factor=2.0, window=100, min_history=10)
    flagged = [t for t, loss in enumerate(losses) if detector.update(loss)]
    assert flagged == sorted(INJECTED)
    assert detector.spikes == len(INJECTED)
    assert detector.updates == len(losses)
    # The spikes stayed out of the history: the median is that of the last 100 clean losses.
    clean = [loss for t, loss in enumerate(losses) if t not in INJECTED]
    assert detector.median == pytest.approx(statistics.median(clean[-100:]))


def test_a_burst_does_not_raise_the_bar():
    detector = LossSpikeDetector(factor=2.0, window=10, min_history=3)
    for _ in range(10):
        assert not detector.update(1.0)
    assert all(detector.update(5.0) for _ in range(30))  # kept out of the history, so all flagged
    assert detector.median == 1.0 and detector.spikes == 30 and detector.updates == 40


def test_nothing_flagged_before_min_history_except_non_finite():
    detector = LossSpikeDetector(factor=2.0, window=10, min_history=5)
    for loss in (1.0, 1.0, 50.0, 1.0):
        assert detector.median is None
        assert not detector.update(loss)
    assert detector.median is None
    assert detector.update(float("nan"))  # always a spike, and not added to the history
    assert detector.update(float("-inf"))
    assert detector.median is None
    assert not detector.update(100.0)  # the 5th finite loss: still no median to compare with
    assert detector.median == 1.0  # [1, 1, 50, 1, 100]
    assert detector.update(100.0)
    assert not detector.update(2.0)  # exactly factor * median is not a spike
    assert (detector.spikes, detector.updates) == (3, 9)


def test_window_eviction_moves_the_median():
    detector = LossSpikeDetector(factor=2.0, window=5, min_history=5)
    for _ in range(5):
        detector.update(1.0)
    assert detector.median == 1.0
    assert detector.update(3.0)  # against the old losses: a spike
    medians = []
    for _ in range(5):
        assert not detector.update(1.9)
        medians.append(detector.median)
    assert medians == [1.0, 1.0, 1.9, 1.9, 1.9]  # the 1.0s leave one by one
    assert not detector.update(3.0)  # 3.0 < 2 * 1.9 once the old losses are gone


def test_median_matches_a_reference_on_random_losses():
    # Many ties and evictions: the sorted list must stay the sorted deque.
    rng = random.Random(1)
    detector = LossSpikeDetector(factor=1.5, window=7, min_history=4)
    history = collections.deque(maxlen=7)
    for _ in range(2000):
        loss = float(rng.choice([1, 2, 3, 4, 5, 6, float("nan")]))
        median = statistics.median(history) if len(history) >= 4 else None
        expected = not math.isfinite(loss) or (median is not None and loss > 1.5 * median)
        assert detector.update(loss) == expected
        if not expected:
            history.append(loss)
        assert detector.median == (statistics.median(history) if len(history) >= 4 else None)


def test_state_dict_round_trip_reproduces_decisions():
    losses = synthetic_losses(600, {302: 3.0, 351: float("nan"), 420: 2.5, 555: 6.0}, seed=2)
    reference = LossSpikeDetector(factor=2.0, window=50, min_history=10)
    for loss in losses[:300]:
        reference.update(loss)
    state = json.loads(json.dumps(reference.state_dict()))  # plain numbers and lists only
    assert len(state["history"]) == 50

    resumed = LossSpikeDetector(factor=2.0, window=50, min_history=10)
    resumed.load_state_dict(state)
    assert resumed.median == reference.median
    assert (resumed.spikes, resumed.updates) == (reference.spikes, reference.updates)
    expected = [reference.update(loss) for loss in losses[300:]]
    assert [resumed.update(loss) for loss in losses[300:]] == expected
    assert [t for t, spike in enumerate(expected, start=300) if spike] == [302, 351, 420, 555]
    assert resumed.state_dict() == reference.state_dict()

    # Without the saved history the spike right after the resume (step 302) goes unseen.
    fresh = LossSpikeDetector(factor=2.0, window=50, min_history=10)
    assert not any(fresh.update(loss) for loss in losses[300:303])


def test_load_state_dict_keeps_own_settings_and_newest_history():
    source = LossSpikeDetector(factor=2.0, window=10, min_history=2)
    for loss in range(1, 11):
        source.update(float(loss))
    smaller = LossSpikeDetector(factor=3.0, window=4, min_history=2)
    smaller.load_state_dict(source.state_dict())
    assert (smaller.factor, smaller.window) == (3.0, 4)
    assert smaller.state_dict()["history"] == [7.0, 8.0, 9.0, 10.0]
    assert smaller.median == 8.5
    with pytest.raises(ValueError, match="history"):
        smaller.load_state_dict({"spikes": 0, "updates": 0})
    with pytest.raises(ValueError, match="non-finite"):
        smaller.load_state_dict({"history": [1.0, float("nan")], "spikes": 0, "updates": 2})


def test_update_accepts_a_scalar_tensor():
    detector = LossSpikeDetector(factor=2.0, window=3, min_history=1)
    assert not detector.update(torch.tensor(1.0))
    assert detector.update(torch.tensor(3.0))
    assert isinstance(detector.median, float)


@pytest.mark.parametrize(
    "kwargs, flag",
    [
        ({"factor": 1.0}, "--spike-factor"),
        ({"factor": 0.5}, "--spike-factor"),
        ({"factor": float("nan")}, "--spike-factor"),
        ({"window": 0}, "--spike-window"),
        ({"min_history": 0}, "--spike-min-history"),
        ({"window": 5, "min_history": 6}, "--spike-min-history"),
    ],
)
def test_bad_settings_raise_one_line_naming_the_flag(kwargs, flag):
    with pytest.raises(ValueError) as error:
        LossSpikeDetector(**kwargs)
    message = str(error.value)
    assert flag in message and "\n" not in message


def test_layer_grad_norms_match_norms_by_hand():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2), nn.Linear(2, 2))
    model[2].bias.requires_grad_(False)  # its grad stays None: skipped
    model[3].requires_grad_(False)  # no grads at all: 0.0
    model(torch.randn(5, 4)).pow(2).sum().backward()

    first = math.sqrt(model[0].weight.grad.norm().item() ** 2 + model[0].bias.grad.norm().item() ** 2)
    expected = [first, 0.0, model[2].weight.grad.norm().item(), 0.0]
    assert model[2].bias.grad is None
    assert layer_grad_norms(list(model)) == pytest.approx(expected, rel=1e-6)
    assert layer_grad_norms([]) == []


def test_layer_grad_norms_do_not_overflow_in_half_precision():
    layer = nn.Linear(100, 10, bias=False).half()
    layer.weight.grad = torch.full_like(layer.weight, 300.0)  # 300^2 > fp16's max (65504)
    (norm,) = layer_grad_norms([layer])
    assert norm == pytest.approx(300.0 * math.sqrt(1000))
