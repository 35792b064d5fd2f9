"""Spike No More options in the transformer family: defaults are fairseq's, bit for bit; the
"small" scheme's stds measured on a built model; embedding treatments through the real CLI."""

import math

import pytest
import torch

from conftest import TINY_MODEL, TRAIN_FLAGS, USER_DIR, one_line_error, run_cli
from fairseq_plugins.cli.dataless import model_from_flags
from fairseq_plugins.errors import ConfigError
from fairseq_plugins.modules.spike_init import EmbeddingTreatment


def build(arch, *flags, seed=3):
    torch.manual_seed(seed)
    return model_from_flags(["--arch", arch, *TINY_MODEL, *map(str, flags)], 300)


@pytest.mark.parametrize("arch", ["composable_transformer", "b2t_transformer"])
def test_defaults_are_fairseqs_init_bit_for_bit(arch):
    stock, ours = build("transformer").state_dict(), build(arch).state_dict()
    assert stock.keys() == ours.keys()
    assert all(torch.equal(stock[name], ours[name]) for name in stock)


def test_small_init_stds_match_the_formulas():
    dim, layers = 256, 6
    model = build("composable_transformer", "--init-scheme", "small", "--encoder-embed-dim", dim,
                  "--decoder-embed-dim", dim, "--encoder-ffn-embed-dim", 1024, "--decoder-ffn-embed-dim", 1024,
                  "--encoder-layers", layers, "--decoder-layers", layers)
    small = math.sqrt(2 / (5 * dim))
    params = dict(model.named_parameters())

    def pooled_std(suffix):
        return torch.cat([p.flatten() for name, p in params.items() if name.endswith(suffix)]).std().item()

    for suffix in ("self_attn.q_proj.weight", "fc1.weight", "encoder_attn.k_proj.weight"):
        assert pooled_std(suffix) == pytest.approx(small, rel=0.05), suffix
    for suffix in ("self_attn.out_proj.weight", "fc2.weight"):
        assert pooled_std(suffix) == pytest.approx(small / math.sqrt(2 * layers), rel=0.05), suffix
    assert params["encoder.embed_tokens.weight"][4:].std().item() == pytest.approx(small, rel=0.05)


def test_embed_init_std_overrides():
    model = build("composable_transformer", "--embed-init-std", "1.0", "--embed-treatment", "vanilla",
                  "--share-all-embeddings")
    weight = model.encoder.embed_tokens.weight
    assert weight[4:].std().item() == pytest.approx(1.0, rel=0.05) and weight[1].abs().sum() == 0


def test_embed_init_std_with_sqrt_d_scaling_is_refused():
    """Scaled embeddings multiply by sqrt(d): --embed-init-std 1.0 would silently mean std sqrt(d)."""
    with pytest.raises(ConfigError, match="--embed-init-std 1.0 with --embed-treatment scaled multiplies"):
        build("composable_transformer", "--embed-init-std", "1.0")


def test_small_scheme_composes_with_alone_embeddings():
    model = build("alone_transformer", "--init-scheme", "small", "--share-all-embeddings", "--alone-inter-dim", "64")
    assert model.encoder.layers[0].fc1.weight.std().item() == pytest.approx(math.sqrt(2 / (5 * 128)), rel=0.1)


def test_vanilla_is_fairseqs_unscaled_embedding():
    stock = build("transformer", "--no-scale-embedding")
    ours = build("composable_transformer", "--embed-treatment", "vanilla")
    assert ours.encoder.embed_scale == stock.encoder.embed_scale == 1.0


@pytest.mark.parametrize("treatment", ["layernorm", "detach"])
def test_treatments_apply_to_both_stacks(treatment):
    model = build("composable_transformer", "--embed-treatment", treatment)
    for stack in (model.encoder, model.decoder):
        assert isinstance(stack.embed_scale, EmbeddingTreatment) and stack.embed_scale.kind == treatment
    src, prev = torch.randint(4, 300, (2, 5)), torch.randint(4, 300, (2, 4))
    model(src, torch.tensor([5, 5]), prev)[0].sum().backward()
    embedded = model.encoder.embed_scale(model.encoder.embed_tokens(src))
    if treatment == "layernorm":
        assert embedded.std(-1).mean().item() == pytest.approx(1.0, rel=0.02)
        assert model.encoder.embed_scale.layer_norm.weight.grad is not None


def test_small_scheme_with_layernorm_embeddings_trains(toy_bin, tmp_path):
    result = run_cli("fairseq-train", toy_bin, "--user-dir", USER_DIR, "--arch", "composable_transformer",
                     *TRAIN_FLAGS, "--encoder-residual", "pre_ln", "--decoder-residual", "pre_ln",
                     "--init-scheme", "small", "--embed-treatment", "layernorm", "--max-update", 3,
                     "--save-dir", tmp_path, "--no-epoch-checkpoints")
    assert "num_updates 3" in result.stdout + result.stderr
    state = torch.load(tmp_path / "checkpoint_last.pt")["model"]
    assert "encoder.embed_scale.layer_norm.weight" in state


@pytest.mark.parametrize("flags, message", [
    (["--init-scheme", "tiny"], "--init-scheme must be one of fairseq, small"),
    (["--embed-treatment", "half"], "--embed-treatment must be one of vanilla, scaled, layernorm, detach"),
    (["--embed-treatment", "detach", "--embed-detach-alpha", "2"], "--embed-detach-alpha"),
    (["--embed-init-std", "0"], "--embed-init-std"),
    (["--embeddings", "alone", "--embed-init-std", "1"], "--embed-init-std initialises standard embeddings only"),
])
def test_bad_values_are_one_line(toy_bin, tmp_path, flags, message):
    result = run_cli("fairseq-train", toy_bin, "--user-dir", USER_DIR, "--arch", "composable_transformer",
                     *TRAIN_FLAGS, *flags, "--max-update", 1, "--save-dir", tmp_path, check=False)
    one_line_error(result, message)
