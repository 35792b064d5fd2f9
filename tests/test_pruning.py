"""modules/pruning.py: the prunable set, global magnitude pruning by rounds of the original count,
rewinding, mask IoU, the diversity regulariser and the ensemble diversity measures."""

import math

import pytest
import torch

from fairseq_plugins.modules import pruning

ROBERTA_NAMES = {
    "encoder.sentence_encoder.embed_tokens.weight": (50, 8),
    "encoder.sentence_encoder.embed_positions.weight": (20, 8),
    "encoder.sentence_encoder.layers.0.self_attn.q_proj.weight": (8, 8),
    "encoder.sentence_encoder.layers.0.self_attn.k_proj.weight": (8, 8),
    "encoder.sentence_encoder.layers.0.self_attn.v_proj.weight": (8, 8),
    "encoder.sentence_encoder.layers.0.self_attn.out_proj.weight": (8, 8),
    "encoder.sentence_encoder.layers.0.self_attn.q_proj.bias": (8,),
    "encoder.sentence_encoder.layers.0.self_attn_layer_norm.weight": (8,),
    "encoder.sentence_encoder.layers.0.fc1.weight": (16, 8),
    "encoder.sentence_encoder.layers.0.fc2.weight": (8, 16),
    "encoder.lm_head.dense.weight": (8, 8),
    "encoder.lm_head.weight": (50, 8),
    "classification_heads.sentence_classification_head.dense.weight": (8, 8),
    "classification_heads.sentence_classification_head.out_proj.weight": (3, 8),
}


def random_state(shapes, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return {name: torch.randn(shape, generator=generator) for name, shape in shapes.items()}


def test_prunable_set_of_roberta_and_image_classifier():
    names = pruning.prunable_names(random_state(ROBERTA_NAMES))
    assert set(names) == {name for name in ROBERTA_NAMES if name.endswith(("_proj.weight", "fc1.weight", "fc2.weight"))
                          and "classification_heads" not in name} | {
        "classification_heads.sentence_classification_head.dense.weight"}
    image = {"encoder.1.weight": (64, 64), "encoder.1.bias": (64,), "encoder.0.weight": (32, 1, 3, 3),
             "output_projection.weight": (10, 64), "reference_pool.inputs": (0, 4)}
    assert pruning.prunable_names(random_state(image)) == ["encoder.1.weight", "encoder.0.weight"]


def test_three_rounds_prune_exactly_thirty_percent_of_the_original_count():
    state = random_state({"a": (37, 11), "b": (5, 7, 3)})
    masks = pruning.full_masks(state, ["a", "b"])
    _, total = pruning.count(masks)
    for r in (1, 2, 3):
        weights = {name: tensor * (1 + 0.1 * r) for name, tensor in state.items()}  # magnitudes change between rounds
        previous = masks
        masks = pruning.magnitude_prune(weights, masks, pruning.pruned_target(r, 3, 0.3, total))
        pruned, _ = pruning.count(masks)
        assert pruned == round(total * 0.1 * r)
        assert all(torch.equal(masks[n] & previous[n], masks[n]) for n in masks)  # pruned weights stay pruned
    # global: the survivors' smallest magnitude is >= the pruned ones' largest in the last round's weights
    flat_weights = torch.cat([weights[n].abs().flatten() for n in masks])
    flat_masks = torch.cat([masks[n].flatten() for n in masks])
    newly = ~flat_masks & torch.cat([previous[n].flatten() for n in masks])
    assert flat_weights[flat_masks].min() >= flat_weights[newly].max()


def test_pruning_exact_count_with_ties():
    masks = pruning.magnitude_prune({"w": torch.zeros(10, 10)}, {"w": torch.ones(10, 10, dtype=torch.bool)}, 30)
    assert pruning.count(masks) == (30, 100)
    with pytest.raises(ValueError, match="cannot go from 30 to 20"):
        pruning.magnitude_prune({"w": torch.zeros(10, 10)}, masks, 20)


def test_rewind_restores_every_parameter_bit_for_bit():
    init = random_state(ROBERTA_NAMES, seed=1)
    names = pruning.prunable_names(init)
    masks = {n: torch.rand(init[n].shape) > 0.3 for n in names}
    rewound = pruning.rewind(init, masks)
    for name, tensor in init.items():
        if name in masks:
            assert torch.equal(rewound[name][masks[name]], tensor[masks[name]])
            assert (rewound[name][~masks[name]] == 0).all()
        else:
            assert torch.equal(rewound[name], tensor)  # the classifier head and everything unpruned too


def test_mask_iou():
    a = {"w": torch.tensor([1, 1, 1, 0], dtype=torch.bool), "v": torch.tensor([1, 0], dtype=torch.bool)}
    b = {"w": torch.tensor([1, 0, 1, 1], dtype=torch.bool), "v": torch.tensor([1, 1], dtype=torch.bool)}
    assert pruning.mask_iou(a, b) == 3 / 6
    assert pruning.mean_pairwise_iou([a, b, a]) == pytest.approx((0.5 + 1 + 0.5) / 3)


def test_penalties():
    masks = {"w": torch.ones(200, 50, dtype=torch.bool)}
    l = pruning.random_penalty(masks, 0.3, torch.Generator().manual_seed(0))["w"]
    assert set(l.unique().tolist()) == {0.0, 1.0} and abs((l == 0).float().mean().item() - 0.3) < 0.02
    earlier = [{"w": torch.tensor([1, 1, 0, 0], dtype=torch.bool)}, {"w": torch.tensor([1, 0, 1, 0], dtype=torch.bool)}]
    assert pruning.active_penalty(earlier)["w"].tolist() == [1.0, 0.5, 0.5, 0.0]


def test_penalty_l1_is_the_l1_term_in_float32_with_the_l_sign_subgradient():
    theta = torch.tensor([[0.5, -2.0], [0.0, 3.0]], dtype=torch.float16, requires_grad=True)
    l = torch.tensor([[1.0, 0.5], [1.0, 0.0]])
    value = pruning.penalty_l1({"t": theta}, {"t": l})
    assert value.dtype == torch.float32 and value.item() == pytest.approx(0.5 + 1.0)
    (0.7 * value).backward()
    assert torch.equal(theta.grad, (0.7 * l * torch.sign(theta.detach().float())).half())


def test_diversity_measures_from_a_contingency_table():
    # N11 = 4, N10 = 3, N01 = 2, N00 = 1
    a = [1, 1, 1, 1, 1, 1, 1, 0, 0, 0]
    b = [1, 1, 1, 1, 0, 0, 0, 1, 1, 0]
    assert pruning.contingency(a, b) == (4, 3, 2, 1)
    measures = pruning.pair_diversity(a, b)
    assert measures["q_statistic"] == pytest.approx((4 * 1 - 2 * 3) / (4 * 1 + 2 * 3))
    assert measures["correlation"] == pytest.approx(-2 / math.sqrt(7 * 3 * 6 * 4))
    assert measures["disagreement"] == pytest.approx(0.5) and measures["double_fault"] == pytest.approx(0.1)
    # identical members: Q = 1; a pair without any error leaves Q and rho undefined (left out of the mean)
    assert pruning.pair_diversity(a, a)["q_statistic"] == 1
    assert pruning.ensemble_diversity([[1, 1], [1, 1]])["q_statistic"] is None
    three = pruning.ensemble_diversity([a, b, a])
    assert three["disagreement"] == pytest.approx((0.5 + 0 + 0.5) / 3)
