"""LRPE/LDPE (modules/length_positions.py), the ``--positions lrpe/ldpe`` decoder option and the
``length_controlled_translation`` task through fairseq-train and fairseq-generate."""

import math

import pytest
import torch

from conftest import TINY_MODEL, TRAIN_FLAGS, TOY_SPLITS, USER_DIR, count_hypotheses, one_line_error, run_cli
from fairseq_plugins.cli.dataless import model_from_flags
from fairseq_plugins.modules.length_positions import (
    LengthControlledPositions,
    length_difference_encoding,
    length_ratio_encoding,
    token_character_counts,
    token_counts,
)

PAD, EOS = 1, 2


def test_equations_by_hand():
    dim = 4
    pos, length = torch.tensor([[3]]), torch.tensor([[7]])
    lrpe = length_ratio_encoding(pos, length, dim)[0, 0]
    expected = [math.sin(3), math.cos(3), math.sin(3 / 7 ** 0.5), math.cos(3 / 7 ** 0.5)]
    assert torch.allclose(lrpe, torch.tensor(expected))
    ldpe = length_difference_encoding(pos, length, dim)[0, 0]
    expected = [math.sin(4), math.cos(4), math.sin(4 / 100), math.cos(4 / 100)]
    assert torch.allclose(ldpe, torch.tensor(expected))


def test_ldpe_sees_only_the_remaining_length_and_lrpe_the_length_too():
    positions = torch.arange(10).unsqueeze(0)
    assert torch.allclose(length_difference_encoding(positions, torch.tensor([[12]]), 16),
                          length_difference_encoding(positions + 5, torch.tensor([[17]]), 16), atol=1e-5)
    assert not torch.allclose(length_ratio_encoding(positions, torch.tensor([[12]]), 16),
                              length_ratio_encoding(positions, torch.tensor([[17]]), 16))


def test_character_counts_of_sentencepiece_equal_the_detokenized_text():
    pieces = ["\u2581the", "re", "\u2581dollars", ",", "\u25816", ".", "04", "\u2581caf\u00e9"]
    symbols = ["<s>", "<pad>", "</s>", "<unk>", *pieces]
    counts = token_character_counts(symbols, [0, 1, 2, 3])
    assert counts[:4].tolist() == [0, 0, 0, 0]
    text = "".join(pieces).replace("\u2581", " ")  # " there dollars, 6.04 caf\u00e9"
    assert counts[4:].sum().item() == len(text.encode()) == 26  # bytes: the 75-byte evaluation's unit


def test_character_counts_of_bpe():
    symbols = ["<s>", "<pad>", "</s>", "<unk>", "hou@@", "se", "the"]
    counts = token_character_counts(symbols, [0, 1, 2, 3])
    assert counts.tolist() == [0, 0, 0, 0, 3, 3, 4]  # "house the ": word-final tokens add their space
    assert token_counts(6, [0, 1, 2, 3]).tolist() == [0, 0, 0, 0, 1, 1]


@pytest.mark.parametrize("encoding", ["lrpe", "ldpe"])
def test_full_forward_reads_the_length_and_padding_is_zero(encoding):
    amounts = torch.tensor([0, 0, 0, 0, 4, 3])
    module = LengthControlledPositions(8, PAD, 64, encoding, amounts)
    tokens = torch.tensor([[EOS, 4, 5, 4], [EOS, 5, PAD, PAD]])  # lengths 11 and 3 characters
    out = module(tokens)
    encode = length_ratio_encoding if encoding == "lrpe" else length_difference_encoding
    assert torch.allclose(out[0], encode(torch.tensor([[0, 4, 7, 11]]), torch.tensor([[11]]), 8)[0])
    assert torch.allclose(out[1, :2], encode(torch.tensor([[0, 3]]), torch.tensor([[3]]), 8)[0])
    assert out[1, 2:].abs().sum() == 0


def test_decoding_without_a_length_names_the_flag():
    module = LengthControlledPositions(8, PAD, 64, "ldpe", token_counts(6, [0, 1, 2, 3]))
    with pytest.raises(ValueError, match="--desired-length"):
        module(torch.tensor([[EOS]]), incremental_state={})


@pytest.mark.parametrize("unit, positions", [("tokens", "ldpe"), ("chars", "ldpe"), ("chars", "lrpe+pe")])
def test_incremental_decoding_scores_as_full_forward(unit, positions):
    torch.manual_seed(0)
    model = model_from_flags(["--arch", "b2t_transformer", *TINY_MODEL, "--share-all-embeddings",
                              "--positions", positions, "--length-unit", unit], 40).eval()
    src, tgt = torch.randint(4, 40, (1, 7)), torch.randint(4, 40, (1, 6))
    prev = torch.cat([torch.tensor([[EOS]]), tgt[:, :-1]], dim=1)
    full = model(src, torch.tensor([7]), prev)[0]
    positions = next(m for m in model.decoder.modules() if isinstance(m, LengthControlledPositions))
    positions.desired_length = int(positions.token_amounts[prev].sum())
    encoder_out = model.encoder(src, src_lengths=torch.tensor([7]))
    state, steps = {}, []
    for t in range(prev.size(1)):
        steps.append(model.decoder(prev[:, : t + 1], encoder_out=encoder_out, incremental_state=state)[0])
    assert torch.allclose(full, torch.cat(steps, dim=1), atol=1e-4)
    assert type(model.encoder.embed_positions).__name__ == "SinusoidalPositionalEmbedding"


def test_bad_length_unit_is_one_line(toy_bin, tmp_path):
    result = run_cli("fairseq-train", toy_bin, "--user-dir", USER_DIR, *TRAIN_FLAGS, "--arch", "b2t_transformer",
                     "--positions", "ldpe", "--length-unit", "bytes", "--max-update", 1, "--save-dir", tmp_path,
                     check=False)
    one_line_error(result, "--length-unit", "tokens, chars")


@pytest.fixture(scope="module")
def ldpe_checkpoint(toy_bin, tmp_path_factory):
    save_dir = tmp_path_factory.mktemp("ldpe")
    run_cli("fairseq-train", toy_bin, "--user-dir", USER_DIR, *TRAIN_FLAGS, "--arch", "b2t_transformer",
            "--positions", "ldpe", "--length-unit", "chars", "--max-update", 20, "--save-dir", save_dir,
            "--no-epoch-checkpoints")
    return save_dir / "checkpoint_last.pt"


def generate(toy_bin, checkpoint, *flags, check=True):
    # An output cap keeps the barely trained model's decoding short.
    return run_cli("fairseq-generate", toy_bin, "--user-dir", USER_DIR, "--path", checkpoint, "--gen-subset", "test",
                   "--beam", 2, "--batch-size", 64, "--max-len-a", 0, "--max-len-b", 12, *flags, check=check)


def test_generate_with_a_desired_length(toy_bin, ldpe_checkpoint):
    result = generate(toy_bin, ldpe_checkpoint, "--task", "length_controlled_translation", "--desired-length", 30)
    assert count_hypotheses(result.stdout) == dict(TOY_SPLITS)["test"]


def test_generate_without_a_desired_length_is_one_line(toy_bin, ldpe_checkpoint):
    result = generate(toy_bin, ldpe_checkpoint, "--task", "length_controlled_translation", check=False)
    one_line_error(result, "--desired-length")


def test_desired_length_on_a_model_without_length_positions_is_one_line(toy_bin, tmp_path):
    run_cli("fairseq-train", toy_bin, "--user-dir", USER_DIR, *TRAIN_FLAGS, "--arch", "b2t_transformer",
            "--max-update", 1, "--save-dir", tmp_path, "--no-epoch-checkpoints")
    result = generate(toy_bin, tmp_path / "checkpoint_last.pt", "--task", "length_controlled_translation",
                      "--desired-length", 30, check=False)
    one_line_error(result, "--desired-length", "lrpe or ldpe")


def test_plus_pe_adds_the_length_encoding_to_the_sinusoidal_positions():
    """Takase & Okazaki's "+PE" variants: the decoder keeps fairseq's sinusoidal positions and adds LRPE/LDPE."""
    torch.manual_seed(0)
    plain = model_from_flags(["--arch", "b2t_transformer", *TINY_MODEL, "--share-all-embeddings"], 40)
    summed = model_from_flags(["--arch", "b2t_transformer", *TINY_MODEL, "--share-all-embeddings",
                               "--positions", "lrpe+pe", "--length-unit", "tokens"], 40)
    tokens = torch.tensor([[EOS, 4, 5, 6, PAD]])
    length = LengthControlledPositions(128, PAD, 1024, "lrpe", token_counts(40, [0, 1, 2, 3]))
    expected = plain.decoder.embed_positions(tokens) + length(tokens)
    torch.testing.assert_close(summed.decoder.embed_positions(tokens), expected)
    assert type(summed.encoder.embed_positions).__name__ == "SinusoidalPositionalEmbedding"
