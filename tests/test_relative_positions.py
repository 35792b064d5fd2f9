"""Relative position representations (Shaw et al., 2018), ``--positions relative``: the module's
math against explicit loops over the equation, equality with fairseq's attention when the relative
embeddings are zero, clipping, beam search scoring as full forced decoding, bad values, and
fairseq-train + fairseq-generate with B2T and ALONE (incremental decoding of the decoder is also in
test_shape_alone_end_to_end.py's list of every option)."""

import math
import re
import shutil
from pathlib import Path

import pytest
import torch

from conftest import TINY_MODEL, TOY_SPLITS, TRAIN_FLAGS, USER_DIR, count_hypotheses, one_line_error, run_cli
from fairseq_plugins.cli.dataless import dummy_dictionary, model_from_flags
from fairseq_plugins.errors import ConfigError
from fairseq_plugins.models.relative_multihead_attention import RelativeMultiheadAttention
from fairseq_plugins.modules.relative_attention import RelativeAttention

VOCAB = 40


def loop_attention(q, k, v, key_table, value_table, max_distance, masked=lambda b, i, j: False):
    """Shaw et al.'s equations, one (b, h, i, j) at a time; the queries are the last positions."""
    batch, heads, query_len, dim = q.shape
    key_len = k.size(2)
    z = torch.zeros(batch, heads, query_len, dim, dtype=torch.float64)
    for b in range(batch):
        for h in range(heads):
            for i in range(query_len):
                position = key_len - query_len + i
                row = {j: max(-max_distance, min(max_distance, j - position)) + max_distance for j in range(key_len)}
                e = {j: float(q[b, h, i] @ (k[b, h, j] + key_table[row[j]])) / math.sqrt(dim)
                     for j in range(key_len) if not masked(b, position, j)}
                normaliser = sum(math.exp(value) for value in e.values())
                for j, value in e.items():
                    z[b, h, i] += math.exp(value) / normaliser * (v[b, h, j] + value_table[row[j]]).double()
    return z


def random_qkv(query_len, key_len, batch=2, heads=2, dim=3, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return (torch.randn(batch, heads, query_len, dim, generator=generator),
            torch.randn(batch, heads, key_len, dim, generator=generator),
            torch.randn(batch, heads, key_len, dim, generator=generator))


def test_attention_matches_the_equation_with_masks():
    torch.manual_seed(0)
    attention = RelativeAttention(head_dim=3, max_distance=2)
    q, k, v = random_qkv(6, 6)
    causal = torch.full((6, 6), float("-inf")).triu(1)
    padding = torch.zeros(2, 6, dtype=torch.bool)
    padding[1, 4:] = True  # the second sentence has 4 tokens
    with torch.no_grad():
        z, alpha = attention(q, k, v, attn_mask=causal, key_padding_mask=padding)
    expected = loop_attention(q, k, v, attention.key_embeddings, attention.value_embeddings, 2,
                              masked=lambda b, i, j: j > i or bool(padding[b, j]))
    assert torch.allclose(z.double(), expected, atol=1e-5)
    assert torch.allclose(alpha.sum(-1), torch.ones(2, 2, 6)) and alpha[1, :, :, 4:].abs().max() == 0


def test_decoding_step_is_the_last_query_position():
    """One query against 7 cached keys is position 6: distances 0..-6, clipped at -2."""
    torch.manual_seed(0)
    attention = RelativeAttention(head_dim=3, max_distance=2)
    q, k, v = random_qkv(1, 7)
    with torch.no_grad():
        z, _ = attention(q, k, v)
    expected = loop_attention(q, k, v, attention.key_embeddings, attention.value_embeddings, 2)
    assert torch.allclose(z.double(), expected, atol=1e-5)


def test_distances_beyond_k_share_one_embedding():
    attention = RelativeAttention(head_dim=3, max_distance=2)
    rows = attention.rows(6, 6, "cpu")
    assert rows[0].tolist() == [2, 3, 4, 4, 4, 4] and rows[5].tolist() == [0, 0, 0, 0, 1, 2]
    # Every key the same vector: only the relative term tells keys apart, and keys 2..5 ahead
    # of query 0 (distance >= k) get the same score while nearer ones differ.
    q, _, _ = random_qkv(6, 6)
    same = torch.randn(1, 1, 1, 3).expand(2, 2, 6, 3)
    with torch.no_grad():
        _, alpha = attention(q, same, same)
    assert torch.allclose(alpha[..., 0, 2:], alpha[..., 0, 2:3].expand(2, 2, 4))
    assert not torch.allclose(alpha[..., 0, 0], alpha[..., 0, 1])
    assert not torch.allclose(alpha[..., 0, 1], alpha[..., 0, 2])


def test_zero_relative_embeddings_give_fairseqs_attention():
    from fairseq.modules.multihead_attention import MultiheadAttention

    torch.manual_seed(0)
    relative = RelativeMultiheadAttention(16, 4, max_distance=2).eval()
    plain = MultiheadAttention(16, 4, self_attention=True).eval()
    with torch.no_grad():
        relative.relative_attention.key_embeddings.zero_()
        relative.relative_attention.value_embeddings.zero_()
    missing, unexpected = plain.load_state_dict(relative.state_dict(), strict=False)
    assert not missing
    assert sorted(unexpected) == ["relative_attention.key_embeddings", "relative_attention.value_embeddings"]
    x = torch.randn(5, 2, 16)
    padding = torch.tensor([[False] * 5, [False] * 3 + [True] * 2])
    causal = torch.full((5, 5), float("-inf")).triu(1)
    with torch.no_grad():
        for mask in (None, causal):
            out, weights = relative(x, x, x, key_padding_mask=padding, attn_mask=mask)
            expected, expected_weights = plain(x, x, x, key_padding_mask=padding, attn_mask=mask)
            assert torch.allclose(out, expected, atol=1e-5) and torch.allclose(weights, expected_weights, atol=1e-6)
        # and either table alone, non-zero, makes positions change the output
        expected = plain(x, x, x, key_padding_mask=padding)[0]
        for table in (relative.relative_attention.key_embeddings, relative.relative_attention.value_embeddings):
            table.normal_()
            assert not torch.allclose(relative(x, x, x, key_padding_mask=padding)[0], expected)
            table.zero_()


def relative_model(*flags):
    return model_from_flags(["--arch", "relative_transformer", *TINY_MODEL, "--share-all-embeddings", *flags], VOCAB)


def test_relative_positions_replace_the_absolute_ones_in_self_attention_only():
    model = relative_model("--relative-max-distance", "3")
    assert model.encoder.embed_positions is None and model.decoder.embed_positions is None
    for layer in (*model.encoder.layers, *model.decoder.layers):
        assert isinstance(layer.self_attn, RelativeMultiheadAttention)
        assert layer.self_attn.relative_attention.max_distance == 3
    assert all(type(layer.encoder_attn) is not RelativeMultiheadAttention for layer in model.decoder.layers)
    # per layer, shared across heads: one (2k+1, d_head) table of each kind
    assert model.encoder.layers[0].self_attn.relative_attention.key_embeddings.shape == (7, 128 // 4)


def test_beam_search_scores_as_full_forced_decoding():
    """fairseq's beam search decodes step by step from the cache (reordered between beams) and from
    left-padded sources; each hypothesis's per-token scores must be what one full forward pass gives
    for that hypothesis with its source alone, unpadded."""
    from fairseq.sequence_generator import SequenceGenerator

    torch.manual_seed(0)
    model = relative_model("--relative-max-distance", "2", "--encoder-residual", "b2t", "--decoder-residual", "b2t").eval()
    dictionary = dummy_dictionary(VOCAB)
    lengths = [7, 4, 2]
    src = torch.full((3, 7), dictionary.pad())
    for row, length in enumerate(lengths):
        src[row, 7 - length:] = torch.randint(4, VOCAB, (length,))  # left-padded, as fairseq batches sources
        src[row, -1] = dictionary.eos()
    generator = SequenceGenerator([model], dictionary, beam_size=3, max_len_b=8)
    with torch.no_grad():
        hypotheses = generator.generate([model], {"net_input": {"src_tokens": src, "src_lengths": torch.tensor(lengths)}})
        for row, (length, beam) in enumerate(zip(lengths, hypotheses)):
            source = src[row:row + 1, 7 - length:]
            for hypothesis in beam:
                tokens = hypothesis["tokens"].unsqueeze(0)
                prev = torch.cat([torch.tensor([[dictionary.eos()]]), tokens[:, :-1]], dim=1)
                logits = model(source, torch.tensor([length]), prev)
                lprobs = model.get_normalized_probs(logits, log_probs=True)[0].gather(-1, tokens[0].unsqueeze(-1))
                assert torch.allclose(hypothesis["positional_scores"], lprobs.squeeze(-1), atol=1e-4)


def test_language_model_decodes_incrementally_as_full_forward():
    model = model_from_flags(["--arch", "spike_transformer_lm_tiny", "--positions", "relative", "--relative-max-distance",
                              "2"], VOCAB, task="language_modeling").eval()
    tokens = torch.randint(4, VOCAB, (2, 6), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        full = model.decoder(tokens)[0]
        state = {}
        steps = [model.decoder(tokens[:, : t + 1], incremental_state=state)[0] for t in range(6)]
    assert torch.allclose(torch.cat(steps, dim=1), full, atol=1e-5)


def test_no_weight_decay_embeddings_covers_relative_embeddings():
    model = relative_model("--no-weight-decay-embeddings")
    exempt = {name for name, param in model.named_parameters() if getattr(param, "optim_overrides", None)}
    assert "encoder.layers.1.self_attn.relative_attention.value_embeddings" in exempt
    assert "encoder.layers.1.self_attn.k_proj.weight" not in exempt


@pytest.mark.parametrize("flags, message", [
    (["--relative-max-distance", "0"], "--relative-max-distance must be >= 1 (got 0)"),
    (["--cross-self-attention"], "--cross-self-attention conflicts with --positions relative"),
])
def test_bad_combinations_are_config_errors(flags, message):
    with pytest.raises(ConfigError, match="^" + re.escape(message)):
        relative_model(*flags)


def test_bad_distance_is_one_line_from_fairseq_train(toy_bin, tmp_path):
    result = run_cli("fairseq-train", toy_bin, "--user-dir", USER_DIR, *TRAIN_FLAGS, "--arch", "relative_transformer",
                     "--relative-max-distance", "-3", "--max-update", 1, "--save-dir", tmp_path, check=False)
    one_line_error(result, "--relative-max-distance must be >= 1 (got -3)")


B2T_RELATIVE_ALONE = ["--arch", "b2t_transformer", "--positions", "relative", "--relative-max-distance", "8",
                      "--embeddings", "alone", "--alone-inter-dim", "256"]


def mean_reference_score(data, checkpoint):
    """fairseq-generate --score-reference: the mean per-token log2-probability of the test references."""
    result = run_cli("fairseq-generate", data, "--user-dir", USER_DIR, "--path", checkpoint, "--gen-subset", "test",
                     "--score-reference", "--batch-size", 128)
    scores = [float(line.split("\t")[1]) for line in result.stdout.splitlines() if line.startswith("H-")]
    assert len(scores) == dict(TOY_SPLITS)["test"]
    return sum(scores) / len(scores)


def test_train_and_generate_with_b2t_and_alone(toy_bin, tmp_path):
    def train(max_update):
        return run_cli("fairseq-train", toy_bin, "--user-dir", USER_DIR, *TRAIN_FLAGS, *B2T_RELATIVE_ALONE,
                       "--max-update", max_update, "--save-dir", tmp_path, "--no-epoch-checkpoints")

    train(1)
    shutil.copy(tmp_path / "checkpoint_last.pt", tmp_path / "untrained.pt")
    log = train(40)  # resumes
    assert "Loaded checkpoint" in log.stdout + log.stderr and "num_updates 40" in log.stdout + log.stderr
    state = torch.load(tmp_path / "checkpoint_last.pt")
    assert state["cfg"]["model"].positions == "relative"
    assert {f"{stack}.layers.1.self_attn.relative_attention.key_embeddings" for stack in ("encoder", "decoder")} <= set(state["model"])

    result = run_cli("fairseq-generate", toy_bin, "--user-dir", USER_DIR, "--path", tmp_path / "checkpoint_last.pt",
                     "--gen-subset", "test", "--beam", 4, "--batch-size", 128, "--max-len-a", 1.5, "--max-len-b", 5)
    assert count_hypotheses(result.stdout) == dict(TOY_SPLITS)["test"]
    # Per reference token, in bits: the untrained model is confidently wrong (measured -20.6), a uniform
    # guess scores -log2(V) (-8.4); 40 updates must beat both (measured -7.0).
    vocab = 4 + len((Path(toy_bin) / "dict.xx.txt").read_text().splitlines())
    untrained, trained = (mean_reference_score(toy_bin, tmp_path / name) for name in ("untrained.pt", "checkpoint_last.pt"))
    assert trained > max(untrained, -math.log2(vocab)) + 1.0, (untrained, trained, -math.log2(vocab))
