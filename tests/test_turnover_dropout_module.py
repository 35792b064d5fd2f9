"""Turn-over dropout masks (modules/turnover_dropout.py): determinism, density, independence,
flip complement, checkpoint round trip, and the influence equation."""

import io

import pytest
import torch
from torch import nn

from fairseq_plugins.modules.turnover_dropout import (
    KEEP,
    TurnOverDropout,
    influence,
    instance_masks,
    mask_adjusted,
    turnover_layers,
    use_instances,
)

DIM = 4096
# Agreement of two independent fair coins over DIM units has std 0.5 / sqrt(DIM) ~ 0.0078.
SIX_SIGMA = 6 * 0.5 / DIM**0.5


def test_masks_depend_on_id_not_on_batch_position():
    first = instance_masks(torch.tensor([5, 6, 7]), DIM, seed=3)
    second = instance_masks(torch.tensor([9, 7, 5]), DIM, seed=3)
    assert torch.equal(first[0], second[2]) and torch.equal(first[2], second[1])
    assert torch.equal(first, instance_masks(torch.tensor([5, 6, 7]), DIM, seed=3))


@pytest.mark.parametrize("start", [0, 10**6, 10**9 - 50, 2**62])
def test_density_is_half_for_any_id(start):
    masks = instance_masks(torch.arange(start, start + 50), DIM, seed=11).float()
    per_instance = masks.mean(1)
    print(f"ids from {start}: density {per_instance.mean():.4f}, range {per_instance.min():.4f}..{per_instance.max():.4f}")
    assert (per_instance - KEEP).abs().max() < SIX_SIGMA


def test_every_unit_is_on_for_about_half_the_instances():
    masks = instance_masks(torch.arange(20_000), 256, seed=0).float()
    # 20k instances per unit: std 0.0035.
    assert (masks.mean(0) - 0.5).abs().max() < 0.02


def agreement(a, b):
    return (a == b).float().mean(-1)


def test_instances_are_independent():
    ids = torch.cat([torch.arange(100), torch.arange(10**9, 10**9 + 100)])
    masks = instance_masks(ids, DIM, seed=5)
    neighbours = agreement(masks[:-1], masks[1:])  # consecutive ids, the hardest case for a hash
    shuffled = agreement(masks, masks[torch.randperm(len(ids), generator=torch.Generator().manual_seed(0))])
    assert (neighbours - 0.5).abs().max() < SIX_SIGMA
    # Same id pairs with itself at fixed points of the permutation: agreement 1; skip those.
    assert ((shuffled[shuffled < 1] - 0.5).abs() < SIX_SIGMA).all()
    # Pairwise correlation matrix of 200 masks: off-diagonal near 0.
    centred = masks.float() - 0.5
    corr = centred @ centred.T / (0.25 * DIM)
    off_diagonal = corr[~torch.eye(len(ids), dtype=torch.bool)]
    assert off_diagonal.abs().max() < 6 / DIM**0.5 and abs(off_diagonal.mean()) < 0.005


def test_layers_are_independent():
    ids = torch.arange(0, 10**9, 10**7)
    layer_a = instance_masks(ids, DIM, seed=0)
    layer_b = instance_masks(ids, DIM, seed=1)
    assert ((agreement(layer_a, layer_b) - 0.5).abs() < SIX_SIGMA).all()


def test_flip_is_the_complement_and_no_ids_is_the_full_network():
    layer = TurnOverDropout(seed=2)
    x = torch.randn(3, 4, DIM)
    model = nn.Sequential(layer)
    assert torch.equal(model(x), x)
    ids = torch.tensor([0, 17, 10**9])
    with use_instances(model, ids):
        kept = model(x)
    with use_instances(model, ids, flip=True):
        flipped = model(x)
    mask = instance_masks(ids, DIM, 2)
    assert torch.equal(kept, x * mask[:, None, :] / KEEP)
    assert torch.equal((kept != 0) | (x == 0), mask[:, None, :].expand_as(x) | (x == 0))
    torch.testing.assert_close(kept + flipped, 2 * x)  # m/0.5 + (1-m)/0.5 = 2
    assert ((kept != 0) & (flipped != 0)).sum() == 0
    assert torch.equal(model(x), x)  # ids cleared after the block


def test_batch_dim_for_time_major_inputs():
    layer = TurnOverDropout(seed=4, batch_dim=1)
    x = torch.randn(5, 2, 8)  # T x B x C
    ids = torch.tensor([3, 4])
    with use_instances(layer, ids):
        y = layer(x)
    assert torch.equal(y, x * instance_masks(ids, 8, 4)[None].float() / KEEP)


def test_wrong_batch_size_is_one_clear_error():
    layer = TurnOverDropout(seed=4)
    with use_instances(layer, torch.tensor([1, 2, 3])), pytest.raises(ValueError, match="3 rows of instance ids"):
        layer(torch.randn(2, 8))


def test_checkpoint_round_trip_regenerates_the_masks():
    model = nn.Sequential(nn.Linear(4, 16), TurnOverDropout(seed=123), nn.Linear(16, 2), TurnOverDropout(seed=77))
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    reloaded = nn.Sequential(nn.Linear(4, 16), TurnOverDropout(seed=0), nn.Linear(16, 2), TurnOverDropout(seed=0))
    reloaded.load_state_dict(torch.load(buffer, weights_only=True))
    ids = torch.arange(10**9, 10**9 + 32)
    for original, restored in zip(turnover_layers(model), turnover_layers(reloaded)):
        assert torch.equal(original.masks(ids, 16), restored.masks(ids, 16))
    x = torch.randn(32, 4)
    with use_instances(model, ids), use_instances(reloaded, ids):
        assert torch.equal(model(x), reloaded(x))


def test_influence_is_flipped_minus_kept_loss():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 32), nn.ReLU(), TurnOverDropout(seed=9), nn.Linear(32, 3))
    x, y, ids = torch.randn(4, 6), torch.tensor([0, 1, 2, 0]), torch.tensor([8, 8, 3, 10**9])

    def row_losses():
        return nn.functional.cross_entropy(model(x), y, reduction="none")

    scores = influence(model, row_losses, ids)
    for r in range(4):
        mask = instance_masks(ids[r : r + 1], 32, 9)[0].float()
        hidden = torch.relu(model[0](x[r]))
        loss = [nn.functional.cross_entropy(model[3](hidden * m / KEEP)[None], y[r : r + 1]) for m in (1 - mask, mask)]
        torch.testing.assert_close(scores[r], loss[0] - loss[1])


def test_pair_mode_equals_pairing_rows_by_hand():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(6, 32), nn.ReLU(), TurnOverDropout(seed=9), nn.Linear(32, 16), TurnOverDropout(seed=10), nn.Linear(16, 3))
    tests, y = torch.randn(5, 6), torch.tensor([0, 1, 2, 0, 1])
    train_ids = torch.tensor([4, 10**9, 7])
    paired = influence(model, lambda: nn.functional.cross_entropy(model(tests), y.repeat(3), reduction="none"), train_ids, rows_per_id=5)
    by_hand = influence(model, lambda: nn.functional.cross_entropy(model(tests.repeat(3, 1)), y.repeat(3), reduction="none"), train_ids.repeat_interleave(5))
    torch.testing.assert_close(paired, by_hand)
    assert paired.shape == (15,)


def test_mask_adjusted_scores_keep_the_instances_own_effect():
    """Scores = a term additive over mask units (a half-network's quality) + the instance's own
    effect: the adjustment returns the own effect and the share of variance the masks explain."""
    generator = torch.Generator().manual_seed(0)
    masks = instance_masks(torch.arange(4000), 64, seed=3)
    unit_quality = torch.randn(64, generator=generator, dtype=torch.float64)
    own = torch.randn(4000, generator=generator, dtype=torch.float64) * 0.5
    scores = (masks.double() * 2 - 1) @ unit_quality + 7.0 + own
    adjusted, explained = mask_adjusted(scores, masks)
    assert torch.corrcoef(torch.stack([adjusted, own]))[0, 1] > 0.99
    assert explained == pytest.approx(1 - own.var().item() / scores.var().item(), abs=0.02)
    # Scores the masks do not explain: only the chance share (units / instances) is removed.
    _, explained = mask_adjusted(own, masks)
    assert explained < 3 * 64 / 4000
