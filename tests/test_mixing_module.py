"""modules/mixing.py: Beta weights, mixup targets, the DIP operator and the reference pool."""

import numpy as np
import pytest
import torch

from fairseq_plugins.models.image_classifiers import ImageClassifier, ImageClassifierConfig
from fairseq_plugins.modules.input_store import InputStore
from fairseq_plugins.modules.mixing import (
    dip_log_probs, evaluation_draws, mix, mixed_targets, sample_mixing_weights, training_draws,
)


def image_model(seed=0):
    torch.manual_seed(seed)
    return ImageClassifier(ImageClassifierConfig(hidden_dim=32), (1, 8, 8), 10).eval()


def test_lambda_one_gives_erm_prediction():
    model = image_model()
    images, references = torch.rand(6, 1, 8, 8), torch.rand(6 * 5, 1, 8, 8)
    erm = torch.log_softmax(model(images)[0], dim=-1)
    dip = dip_log_probs(model.forward_from_mixing_point, images, None, references, None, torch.ones(6, 5))
    assert torch.equal(dip.argmax(-1), erm.argmax(-1))
    torch.testing.assert_close(dip, erm, rtol=0, atol=1e-6)  # log(mean of 5 equal numbers) is exact up to rounding
    single = dip_log_probs(model.forward_from_mixing_point, images, None, references[:6], None, torch.ones(6, 1))
    assert torch.equal(single, erm)


def test_dip_averages_probabilities_of_the_mixes():
    model = image_model(1)
    images, references = torch.rand(2, 1, 8, 8), torch.rand(2 * 3, 1, 8, 8)
    weights = torch.tensor([[0.9, 0.6, 0.75], [0.5, 1.0, 0.8]])
    got = dip_log_probs(model.forward_from_mixing_point, images, None, references, None, weights)
    for b in range(2):
        mixes = torch.stack([weights[b, s] * images[b] + (1 - weights[b, s]) * references[b * 3 + s] for s in range(3)])
        expected = torch.softmax(model(mixes)[0], dim=-1).mean(0).log()
        torch.testing.assert_close(got[b], expected, rtol=1e-5, atol=1e-6)


def test_weights_are_seeded_and_dip_keeps_x_dominant():
    first = sample_mixing_weights(np.random.default_rng(5), 0.4, (3, 7))
    assert torch.equal(first, sample_mixing_weights(np.random.default_rng(5), 0.4, (3, 7)))
    assert not torch.equal(first, sample_mixing_weights(np.random.default_rng(6), 0.4, (3, 7)))
    assert first.min() < 0.5  # mixup's lam: the plain Beta(a, a)
    dominant = sample_mixing_weights(np.random.default_rng(5), 0.4, (3, 7), keep_dominant=True)
    assert dominant.min() >= 0.5 and torch.equal(dominant, torch.maximum(first, 1 - first))
    with pytest.raises(ValueError, match="a > 0"):
        sample_mixing_weights(np.random.default_rng(0), 0.0, 3)


def test_training_draws_are_reproducible():
    draws = [training_draws(np.random.default_rng(9), 4, 3, 1.0, 50) for _ in range(2)]
    assert all(torch.equal(a, b) for a, b in zip(*draws))
    weights, references = draws[0]
    assert weights.shape == references.shape == (4, 3) and 0 <= references.min() and references.max() < 50


def test_evaluation_draws_depend_only_on_seed_and_example():
    weights, references = evaluation_draws(3, torch.tensor([10, 11, 12]), 4, 1.0, 100)
    alone_w, alone_r = evaluation_draws(3, torch.tensor([11]), 16, 1.0, 100)
    assert torch.equal(weights[1], alone_w[0, :4]) and torch.equal(references[1], alone_r[0, :4])  # batch and S free
    other_w, _ = evaluation_draws(4, torch.tensor([11]), 4, 1.0, 100)
    assert not torch.equal(other_w[0], weights[1])


def test_mixup_targets_sum_to_one():
    weights = sample_mixing_weights(np.random.default_rng(0), 0.2, 8)
    target, partner = torch.randint(0, 5, (8,)), torch.randint(0, 5, (8,))
    soft = mixed_targets(target, partner, weights, 5)
    torch.testing.assert_close(soft.sum(-1), torch.ones(8))
    assert torch.all(soft.gather(1, target[:, None]).squeeze(1) >= weights - 1e-6)


def test_sequence_mixing_pads_and_masks():
    first, second = torch.ones(2, 3, 4), 2 * torch.ones(2, 5, 4)
    first_pad = torch.tensor([[False, False, True], [False, False, False]])
    second_pad = torch.tensor([[False] * 5, [False, True, True, True, True]])
    weights = torch.tensor([0.25, 0.5])
    mixed, padding = mix(first, second, weights, first_pad, second_pad)
    assert mixed.shape == (2, 5, 4) and padding.tolist() == [[False] * 5, [False, False, False, True, True]]
    torch.testing.assert_close(mixed[0, 4], torch.full((4,), 0.75 * 2))  # the first sentence's zero padding
    kept, kept_padding = mix(first, second, weights, first_pad, second_pad, keep_first_length=True)
    assert kept.shape == (2, 3, 4) and torch.equal(kept_padding, first_pad)
    same, _ = mix(first, second, torch.ones(2), first_pad, second_pad, keep_first_length=True)
    assert torch.equal(same, first)


def test_reference_pool_round_trips_through_a_state_dict():
    model = image_model()
    model.reference_pool.fill({"images": torch.rand(7, 1, 8, 8)})
    fresh = image_model(3)
    assert len(fresh.reference_pool) == 0
    fresh.load_state_dict(model.state_dict())
    assert len(fresh.reference_pool) == 7
    assert torch.equal(fresh.reference_pool.select(torch.tensor([2, 5]))["images"], model.reference_pool.images[[2, 5]])
    empty = InputStore()
    assert len(empty) == 0 and list(empty.state_dict()) == []


def test_lambda_one_gives_erm_prediction_for_text():
    """The transformer classifier mixes embeddings; x keeps its length and padding, so lam = 1 is x."""
    from fairseq.data import Dictionary

    from fairseq_plugins.models.transformer_classifier import TransformerClassifier, TransformerClassifierConfig

    dictionary = Dictionary()
    for i in range(20):
        dictionary.add_symbol(f"w{i}")
    torch.manual_seed(0)
    model = TransformerClassifier(TransformerClassifierConfig(encoder_embed_dim=32, encoder_ffn_embed_dim=64), dictionary)
    model.register_classification_head("head", num_classes=3)
    model.eval()
    tokens = torch.randint(4, len(dictionary), (3, 6))
    tokens[0, 4:] = dictionary.pad()
    references = torch.randint(4, len(dictionary), (3 * 2, 9))
    erm = torch.log_softmax(model(tokens)[0], dim=-1)
    features, padding = model.features_at_mixing_point(tokens)
    reference_features, reference_padding = model.features_at_mixing_point(references)
    dip = dip_log_probs(model.forward_from_mixing_point, features, padding, reference_features, reference_padding,
                        torch.ones(3, 2))
    assert torch.equal(dip.argmax(-1), erm.argmax(-1))
    torch.testing.assert_close(dip, erm, rtol=0, atol=1e-6)


def test_loaded_inputs_follow_the_models_dtype_and_device():
    """fairseq loads a checkpoint (saved from CPU float32) into a model already moved and cast."""
    saved = InputStore()
    saved.fill({"images": torch.rand(3, 1, 8, 8), "ids": torch.arange(3)})
    half = InputStore().half()
    half.load_state_dict(saved.state_dict())
    assert half.images.dtype == torch.float16 and half.ids.dtype == torch.int64
    torch.testing.assert_close(half.images.float(), saved.images, atol=1e-3, rtol=0)
    moved = InputStore().to("meta")
    moved.load_state_dict(saved.state_dict())
    assert moved.images.device.type == "meta" and moved.ids.device.type == "meta"
