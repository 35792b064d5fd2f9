"""Spike No More (modules/spike_init.py): small init stds, embedding treatments, embedding init, flags."""

import math

import pytest
import torch
from torch import nn

from fairseq_plugins.modules.spike_init import (
    EMBED_TREATMENTS,
    INIT_SCHEMES,
    EmbeddingTreatment,
    check_init_scheme,
    init_embedding_,
    small_init_,
)

DIM = 256
DEPTH = 8


class ToyAttention(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (nn.Linear(dim, dim) for _ in range(4))


class ToyLayer(nn.Module):
    """fairseq's parameter names: self_attn.{q,k,v,out}_proj, fc1, fc2, two LayerNorms."""

    def __init__(self, dim, cross_attention=False):
        super().__init__()
        self.self_attn = ToyAttention(dim)
        self.self_attn_layer_norm = nn.LayerNorm(dim)
        if cross_attention:
            self.encoder_attn = ToyAttention(dim)
            self.encoder_attn_layer_norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, 4 * dim)
        self.fc2 = nn.Linear(4 * dim, dim)
        self.final_layer_norm = nn.LayerNorm(dim)


def close(measured, expected, tolerance=0.05):
    return abs(measured / expected - 1) < tolerance


def test_small_init_stds_biases_and_layer_norms():
    torch.manual_seed(0)
    layers = nn.ModuleList(ToyLayer(DIM, cross_attention=True) for _ in range(DEPTH))
    with torch.no_grad():  # make sure the init overwrites everything it should
        for layer in layers:
            for p in layer.parameters():
                p.fill_(0.5)
    small_init_(layers, DIM)

    std = math.sqrt(2 / (5 * DIM))
    residual_std = std / math.sqrt(2 * DEPTH)
    names = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "fc1", "encoder_attn.q_proj"]
    residual_names = ["self_attn.out_proj", "fc2", "encoder_attn.out_proj"]
    modules = dict(layers[0].named_modules())
    for name in names + residual_names:
        weights = torch.cat([dict(layer.named_modules())[name].weight.flatten() for layer in layers])
        expected = residual_std if name in residual_names else std
        measured = weights.std().item()
        print(f"{name}: std {measured:.5f} (expected {expected:.5f})")
        assert close(measured, expected), name
        assert abs(weights.mean().item()) < 0.05 * expected
    for layer in layers:
        for name, p in layer.named_parameters():
            if name.endswith("bias"):
                assert torch.count_nonzero(p) == 0, name
            elif "layer_norm" in name:
                assert torch.all(p == 1), name
    # Each layer draws its own weights.
    assert not torch.equal(layers[0].fc1.weight, layers[1].fc1.weight)
    assert modules["fc2"].weight.shape == (DIM, 4 * DIM)


def test_small_init_per_layer_std_of_one_matrix():
    torch.manual_seed(1)
    layers = [ToyLayer(DIM) for _ in range(DEPTH)]
    small_init_(layers, DIM)
    std = math.sqrt(2 / (5 * DIM))
    for layer in layers:  # 65k entries per matrix: the std's standard error is ~0.3%
        assert close(layer.self_attn.v_proj.weight.std().item(), std)
        assert close(layer.self_attn.out_proj.weight.std().item(), std / math.sqrt(2 * DEPTH))


def test_small_init_rejects_layers_without_fairseq_names():
    with pytest.raises(ValueError, match="out_proj or fc2"):
        small_init_([nn.Sequential(nn.Linear(4, 4))], 4)
    with pytest.raises(ValueError, match="at least one layer"):
        small_init_([], DIM)


def test_init_embedding_std_and_padding_row():
    torch.manual_seed(2)
    weight = torch.empty(1000, DIM)
    for std in (1.0, math.sqrt(2 / (5 * DIM))):
        init_embedding_(weight, std, padding_idx=1)
        others = torch.cat([weight[:1], weight[2:]])
        print(f"embedding: std {others.std().item():.5f} (expected {std:.5f})")
        assert close(others.std().item(), std)
        assert torch.count_nonzero(weight[1]) == 0
    init_embedding_(weight, 1.0, padding_idx=None)
    assert torch.count_nonzero(weight[1]) == DIM


def test_detach_same_value_gradient_times_alpha():
    alpha = 0.1
    treatment = EmbeddingTreatment("detach", DIM, detach_alpha=alpha)
    e = torch.randn(5, 3, DIM, requires_grad=True)
    upstream = torch.randn(5, 3, DIM)
    out = treatment(e)
    assert torch.allclose(out, e, atol=1e-6)
    out.backward(upstream)
    assert torch.allclose(e.grad, alpha * upstream, atol=1e-6)


def test_vanilla_is_identity_and_scaled_multiplies_by_sqrt_d():
    e = torch.randn(4, 2, DIM)
    assert torch.equal(EmbeddingTreatment("vanilla", DIM)(e), e)
    assert torch.allclose(EmbeddingTreatment("scaled", DIM)(e), e * math.sqrt(DIM))
    # The paper's point: small embeddings scaled by sqrt(d) have std sqrt(2/5) for any d.
    small = torch.empty(2000, DIM)
    init_embedding_(small, math.sqrt(2 / (5 * DIM)), None)
    assert close(EmbeddingTreatment("scaled", DIM)(small).std().item(), math.sqrt(2 / 5))


def test_layernorm_standardises_each_position_and_owns_its_parameters():
    treatment = EmbeddingTreatment("layernorm", DIM)
    assert sorted(name for name, _ in treatment.named_parameters()) == ["layer_norm.bias", "layer_norm.weight"]
    e = torch.randn(6, 3, DIM) * 0.04 + 0.01  # small, like vanilla embeddings
    out = treatment(e)
    assert torch.allclose(out.mean(-1), torch.zeros(6, 3), atol=1e-5)
    # std 1 up to LayerNorm's eps (1e-5), which is not negligible next to a variance of 1.6e-3:
    # sqrt(v / (v + eps)) ~ 0.997 here.
    variance = e.var(-1, unbiased=False)
    std = out.std(-1, unbiased=False)
    assert torch.allclose(std, torch.sqrt(variance / (variance + treatment.layer_norm.eps)), atol=1e-4)
    assert torch.allclose(std, torch.ones(6, 3), atol=0.01)
    for kind in ("vanilla", "scaled", "detach"):
        assert list(EmbeddingTreatment(kind, DIM).parameters()) == []


@pytest.mark.parametrize(
    "build, flag",
    [
        (lambda: check_init_scheme("xavier"), "--init-scheme must be one of fairseq, small (got 'xavier')"),
        (lambda: EmbeddingTreatment("scale", DIM),
         "--embed-treatment must be one of vanilla, scaled, layernorm, detach (got 'scale')"),
        (lambda: EmbeddingTreatment("detach", DIM, detach_alpha=1.5), "--embed-detach-alpha"),
        (lambda: EmbeddingTreatment("detach", DIM, detach_alpha=-0.1), "--embed-detach-alpha"),
        (lambda: init_embedding_(torch.empty(3, 4), 0.0, None), "--embed-init-std"),
        (lambda: init_embedding_(torch.empty(3, 4), -1.0, None), "--embed-init-std"),
    ],
)
def test_bad_values_raise_one_line_naming_the_flag(build, flag):
    with pytest.raises(ValueError) as error:
        build()
    message = str(error.value)
    assert flag in message and "\n" not in message


def test_allowed_values():
    assert INIT_SCHEMES == ("fairseq", "small")
    assert EMBED_TREATMENTS == ("vanilla", "scaled", "layernorm", "detach")
    assert all(check_init_scheme(scheme) == scheme for scheme in INIT_SCHEMES)
    for alpha in (0.0, 1.0):
        EmbeddingTreatment("detach", DIM, detach_alpha=alpha)
