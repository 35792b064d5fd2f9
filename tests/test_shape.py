"""SHAPE positions: offsets per sequence, evaluation offset, equality with fairseq's APE at K=0."""

import pytest
import torch
from fairseq.modules import SinusoidalPositionalEmbedding

from conftest import TINY_MODEL
from fairseq_plugins.cli.dataless import model_from_flags
from fairseq_plugins.modules.shape import ShiftedSinusoidalPositions

PAD = 1


def tokens_with_padding():
    tokens = torch.randint(4, 50, (64, 12))
    tokens[:3, :4] = PAD  # left padding, as fairseq pads sources
    return tokens


def offsets_of(embeddings, positions_module):
    """Recover each sequence's offset from its first non-padding position embedding."""
    table = positions_module.weights
    first = embeddings[torch.arange(embeddings.size(0)), (embeddings.abs().sum(-1) > 0).int().argmax(1)]
    rows = torch.cdist(first, table).argmin(dim=1)
    return rows - (PAD + 1)


def test_zero_shift_equals_fairseq_sinusoidal():
    tokens = tokens_with_padding()
    stock = SinusoidalPositionalEmbedding(16, PAD, init_size=PAD + 1 + 64)
    shape = ShiftedSinusoidalPositions(16, PAD, max_positions=64, max_shift=0).train()
    assert torch.equal(stock(tokens), shape(tokens))


def test_training_offsets_per_sequence_in_range():
    torch.manual_seed(0)
    module = ShiftedSinusoidalPositions(16, PAD, max_positions=64, max_shift=10).train()
    tokens = tokens_with_padding()
    embeddings = module(tokens)
    offsets = offsets_of(embeddings, module)
    assert offsets.min() >= 0 and offsets.max() <= 9
    assert len(offsets.unique()) > 5  # per sequence, not one per batch
    # Within a sequence positions are consecutive: embedding of token t is PE(pad + t + k).
    nonpad = tokens[5].ne(PAD)
    expected = module.weights[PAD + 1 + offsets[5] + torch.arange(int(nonpad.sum()))]
    assert torch.equal(embeddings[5][nonpad], expected)
    assert module(tokens).ne(embeddings).any()  # redrawn at every forward


@pytest.mark.parametrize("eval_offset, expected", [("max", 10), ("zero", 0)])
def test_evaluation_offset(eval_offset, expected):
    module = ShiftedSinusoidalPositions(16, PAD, max_positions=64, max_shift=10, eval_offset=eval_offset).eval()
    assert offsets_of(module(tokens_with_padding()), module).tolist() == [expected] * 64


def test_table_covers_max_positions_plus_shift():
    module = ShiftedSinusoidalPositions(16, PAD, max_positions=64, max_shift=10).eval()
    assert module.weights.size(0) == PAD + 1 + 64 + 10
    module(torch.full((2, 64), 7))  # longest sequence at the largest offset fits


@pytest.mark.parametrize("kwargs, flag", [
    (dict(max_shift=-1), "--shape-max-shift"),
    (dict(max_shift=10**6), "--shape-max-shift"),
    (dict(max_shift=3, eval_offset="middle"), "--shape-eval-offset"),
])
def test_bad_values_name_the_flag(kwargs, flag):
    with pytest.raises(ValueError, match=flag):
        ShiftedSinusoidalPositions(16, PAD, max_positions=64, **kwargs)


def test_shape_transformer_draws_independently_per_stack():
    model = model_from_flags(["--arch", "shape_transformer", *TINY_MODEL], vocab_size=40)
    encoder_positions, decoder_positions = model.encoder.embed_positions, model.decoder.embed_positions
    assert isinstance(encoder_positions, ShiftedSinusoidalPositions) and encoder_positions.max_shift == 40
    assert encoder_positions is not decoder_positions
