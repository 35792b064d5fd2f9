"""Span grid, span vectors, greedy flat decoding and tag-scheme conversion."""

import pytest
import torch

from fairseq_plugins.modules.spans import (
    decode, detect_scheme, label_grid, span_mask, span_vectors, spans_to_iob2, tags_to_spans,
)


def test_span_vectors_are_state_differences_with_zero_ends():
    generator = torch.Generator().manual_seed(0)
    states = torch.randn(2, 5, 6, generator=generator)
    lengths = torch.tensor([5, 3])
    states[1, 3:] = 0  # encoders zero the padding
    vectors = span_vectors(states, 3)
    assert vectors.shape == (2, 5, 3, 6)
    for b, length in enumerate(lengths.tolist()):
        f = torch.cat([torch.zeros(1, 3), states[b, :length, :3], torch.zeros(1, 3)])  # f[p + 1] = f_p
        bw = torch.cat([torch.zeros(1, 3), states[b, :length, 3:], torch.zeros(1, 3)])
        for i in range(length):
            for j in range(i, min(i + 3, length)):
                expected = torch.cat([f[j + 1] - f[i], bw[i + 1] - bw[j + 2]])
                torch.testing.assert_close(vectors[b, i, j - i], expected)
    assert span_mask(lengths, 5, 3)[1].nonzero().tolist() == [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [2, 0]]


def test_label_grid_marks_entities_null_and_outside():
    grid = label_grid([(0, 1, 2), (3, 3, 1), (0, 3, 5)], 4, 3)  # the last one is longer than L = 3
    assert grid.tolist() == [[0, 2, 0], [0, 0, 0], [0, 0, -1], [1, -1, -1]]


def test_decode_never_overlaps_and_prefers_high_scores():
    log_probs = torch.full((1, 6, 3, 3), -5.0)
    log_probs[..., 0] = 0.0  # null wins everywhere ...
    log_probs[0, 1, 2, 1] = 2.0  # ... except (1, 3) label 1, score 2
    log_probs[0, 2, 1, 2] = 3.0  # (2, 3) label 2, score 3: overlaps (1, 3) and wins
    log_probs[0, 0, 1, 1] = 1.0  # (0, 1) label 1: overlaps nothing taken before it
    log_probs[0, 5, 0, 2] = 9.0  # (5, 5): past the sentence end (length 5), never taken
    decoded = decode(log_probs, torch.tensor([5]))
    assert [(s, e, y) for s, e, y, _ in decoded[0]] == [(0, 1, 1), (2, 3, 2)]
    # random scores: decoded spans never share a token
    generator = torch.Generator().manual_seed(1)
    for sentence in decode(torch.randn(8, 12, 4, 5, generator=generator), torch.randint(1, 13, (8,), generator=generator)):
        covered = [t for s, e, _, _ in sentence for t in range(s, e + 1)]
        assert len(covered) == len(set(covered))


@pytest.mark.parametrize("scheme, tags", [
    ("iob2", "B-PER I-PER O B-LOC B-LOC I-LOC O".split()),
    ("iob1", "I-PER I-PER O I-LOC B-LOC I-LOC O".split()),
    ("bioes", "B-PER E-PER O S-LOC B-LOC E-LOC O".split()),
])
def test_schemes_read_to_the_same_spans(scheme, tags):
    assert tags_to_spans(tags, scheme) == [(0, 1, "PER"), (3, 3, "LOC"), (4, 5, "LOC")]
    assert detect_scheme([tags]) == ("bioes" if scheme == "bioes" else "iob2")
    assert spans_to_iob2(tags_to_spans(tags, scheme), len(tags)) == "B-PER I-PER O B-LOC B-LOC I-LOC O".split()


def test_iob_reading_of_type_changes_and_trailing_entity():
    assert tags_to_spans("I-PER I-LOC I-LOC".split(), "iob1") == [(0, 0, "PER"), (1, 2, "LOC")]


@pytest.mark.parametrize("scheme, tags, position, message", [
    ("iob2", ["O", "E-PER"], 1, "tag 'E-PER' is not O or one of B-TYPE, I-TYPE (IOB2)"),
    ("bioes", ["PER"], 0, "tag 'PER' is not O or one of B-TYPE, I-TYPE, E-TYPE, S-TYPE (BIOES)"),
    ("iob1", ["O", "O", "B-"], 2, "tag 'B-'"),
])
def test_tags_outside_the_scheme(scheme, tags, position, message):
    with pytest.raises(ValueError) as error:
        tags_to_spans(tags, scheme)
    assert error.value.args[0] == position and message in error.value.args[1]
