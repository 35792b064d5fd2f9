"""B2T equations, stock-fairseq equivalence of the family, rescale init (incremental decoding of every
option is tested in test_shape_alone_end_to_end.py)."""

import pytest
import torch
import torch.nn.functional as F

from conftest import TINY_MODEL, TRAIN_FLAGS, USER_DIR, one_line_error, run_cli
from fairseq_plugins.cli.dataless import model_from_flags
from fairseq_plugins.models.b2t_layers import B2TDecoderLayer, B2TEncoderLayer

VOCAB = 40


def build(arch, *flags, seed=0):
    torch.manual_seed(seed)
    return model_from_flags(["--arch", arch, *TINY_MODEL, *flags], vocab_size=VOCAB)


def random_batch(seed=1, batch=3, src_len=7, tgt_len=5):
    generator = torch.Generator().manual_seed(seed)
    src = torch.randint(4, VOCAB, (batch, src_len), generator=generator)
    prev = torch.randint(4, VOCAB, (batch, tgt_len), generator=generator)
    prev[:, 0] = 2  # eos starts decoding, as in fairseq
    return src, torch.full((batch,), src_len), prev


@pytest.mark.parametrize(
    "stock_flags, our_flags",
    [
        ([], []),
        (
            ["--encoder-normalize-before", "--decoder-normalize-before"],
            ["--encoder-residual", "pre_ln", "--decoder-residual", "pre_ln"],
        ),
    ],
    ids=["post_ln", "pre_ln"],
)
def test_family_equals_stock_transformer_with_same_weights(stock_flags, our_flags):
    stock = build("transformer", *stock_flags).eval()
    ours = build("composable_transformer", *our_flags, seed=123).eval()
    ours.load_state_dict(stock.state_dict(), strict=True)  # same parameter names
    src, lengths, prev = random_batch()
    with torch.no_grad():
        assert torch.equal(stock(src, lengths, prev)[0], ours(src, lengths, prev)[0])


def test_b2t_keeps_fairseq_parameter_names_and_has_no_final_layer_norm():
    stock, b2t = build("transformer"), build("b2t_transformer")
    assert stock.state_dict().keys() == b2t.state_dict().keys()
    assert b2t.encoder.layer_norm is None and b2t.decoder.layer_norm is None
    assert all(isinstance(layer, B2TEncoderLayer) for layer in b2t.encoder.layers)
    assert all(isinstance(layer, B2TDecoderLayer) for layer in b2t.decoder.layers)


def ffn(layer, h):
    return layer.fc2(F.relu(layer.fc1(h)))


def attend(attention, query, memory):
    return attention(query=query, key=memory, value=memory, need_weights=False)[0]


def test_b2t_encoder_layer_equation():
    layer = build("b2t_transformer").encoder.layers[0].eval()
    x = torch.randn(7, 3, 128)
    h = layer.self_attn_layer_norm(x + attend(layer.self_attn, x, x))
    expected = layer.final_layer_norm(x + h + ffn(layer, h))
    assert torch.allclose(layer(x, encoder_padding_mask=None), expected, atol=1e-6)


def test_b2t_decoder_layer_equation():
    layer = build("b2t_transformer").decoder.layers[0].eval()
    x, memory = torch.randn(5, 3, 128), torch.randn(7, 3, 128)
    h1 = layer.self_attn_layer_norm(x + attend(layer.self_attn, x, x))
    h2 = layer.encoder_attn_layer_norm(h1 + attend(layer.encoder_attn, h1, memory))
    expected = layer.final_layer_norm(x + h2 + ffn(layer, h2))
    assert torch.allclose(layer(x, encoder_out=memory)[0], expected, atol=1e-6)


def test_b2t_term_has_no_dropout():
    # With dropout 1 every sub-layer branch is zeroed in training mode; what is
    # left is LN2(x + LN1(x)), which needs the B2T term x to be kept whole.
    encoder_layer = build("b2t_transformer", "--dropout", "1.0").encoder.layers[0].train()
    x = torch.randn(7, 3, 128)
    expected = encoder_layer.final_layer_norm(x + encoder_layer.self_attn_layer_norm(x))
    assert torch.allclose(encoder_layer(x, encoder_padding_mask=None), expected, atol=1e-6)


def test_rescale_init_scales_weight_matrices_only():
    plain = build("b2t_transformer", "--encoder-layers", "4", seed=7)
    rescaled = build("b2t_transformer", "--encoder-layers", "4", "--b2t-rescale-init", seed=7)
    rescaled_params = dict(rescaled.named_parameters())
    for name, param in plain.named_parameters():
        stack_depth = 4 if name.startswith("encoder.") else 2
        scaled = ".layers." in name and "layer_norm" not in name and param.dim() >= 2
        expected = param * stack_depth**-0.5 if scaled else param
        assert torch.allclose(rescaled_params[name], expected), name


def test_b2t_with_normalize_before_is_one_line_error(toy_bin, tmp_path):
    result = run_cli(
        "fairseq-train", toy_bin, "--user-dir", USER_DIR, "--arch", "b2t_transformer", *TRAIN_FLAGS,
        "--encoder-normalize-before", "--max-update", "1", "--save-dir", tmp_path, check=False,
    )
    one_line_error(result, "--encoder-normalize-before", "--encoder-residual b2t")
    assert list(tmp_path.iterdir()) == []


def test_unknown_residual_names_the_flag_and_choices(toy_bin, tmp_path):
    result = run_cli(
        "fairseq-train", toy_bin, "--user-dir", USER_DIR, "--arch", "composable_transformer", *TRAIN_FLAGS,
        "--decoder-residual", "sandwich", "--max-update", "1", "--save-dir", tmp_path, check=False,
    )
    one_line_error(result, "--decoder-residual must be one of post_ln, pre_ln, b2t (got 'sandwich')")

