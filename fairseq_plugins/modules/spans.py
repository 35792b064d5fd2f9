"""Spans for span-based NER: enumeration, span vectors, greedy flat decoding, tag schemes.

Ouchi et al. (ACL 2020) score every span ``(i, j)`` (``i <= j``, inclusive, at most ``L`` tokens)
of a sentence. A batch's spans form a grid ``(B, T, L)``: span ``(i, w)`` starts at token ``i``
and ends at ``j = i + w``; it exists when ``j < length``.

Span vector from forward states ``f`` and backward states ``b`` (the two halves of a
bidirectional encoder's per-token states; zero outside the sentence)::

    h(i, j) = [f_j - f_{i-1} ; b_i - b_{j+1}]

Flat decoding: keep the spans whose best label is not null, take them by descending score and
skip any that overlaps a span already taken; the result never has overlapping spans.

Tags: IOB1, IOB2 and BIOES read into spans and IOB2 written back (what seqeval's strict mode
scores). IOB1 and IOB2 are read alike: an entity starts at ``B-`` or at an ``I-`` that does not
continue an entity of its type (IOB1's rule; a valid IOB2 sequence reads the same way).
"""

import torch
import torch.nn.functional as F

SCHEMES = ("auto", "iob1", "iob2", "bioes")
PREFIXES = {"iob1": "BI", "iob2": "BI", "bioes": "BIES"}
OUTSIDE = "O"


def span_grid(max_length, max_span_length, device=None):
    """``(starts (T, L), ends (T, L))`` of the grid's spans (ends may run past the sentence)."""
    starts = torch.arange(max_length, device=device).view(-1, 1).expand(-1, max_span_length)
    return starts, starts + torch.arange(max_span_length, device=device).view(1, -1)


def span_mask(lengths, max_length, max_span_length):
    """(B, T, L) bool: the spans that lie inside each sentence."""
    _, ends = span_grid(max_length, max_span_length, lengths.device)
    return ends.unsqueeze(0) < lengths.view(-1, 1, 1)


def span_vectors(states, max_span_length):
    """``[f_j - f_{i-1}; b_i - b_{j+1}]`` for every span of the grid: (B, T, L, D) from (B, T, D).

    ``states[..., :D/2]`` are the forward states, ``states[..., D/2:]`` the backward ones; they must
    be zero at padding positions (every token encoder of the package guarantees it).
    """
    batch, length, dim = states.shape
    if dim % 2:
        raise ValueError(f"span vectors need an even state size (forward and backward halves), got {dim}")
    half = dim // 2
    # Padded position p + 1 holds token p; a zero row before the sentence and L after it.
    padded = F.pad(states, (0, 0, 1, max_span_length))
    starts, ends = span_grid(length, max_span_length, states.device)
    forward, backward = padded[..., :half], padded[..., half:]
    return torch.cat([forward[:, ends + 1] - forward[:, starts],
                      backward[:, starts + 1] - backward[:, ends + 2]], dim=-1)


def label_grid(spans, length, max_span_length, outside_label=0):
    """(T, L) long grid of gold labels for one sentence: ``outside_label`` (null) for every span that
    is not an entity, -1 past the sentence end; entities longer than L have no cell (their
    sub-spans stay null)."""
    starts, ends = span_grid(length, max_span_length)
    grid = torch.full((length, max_span_length), outside_label, dtype=torch.long)
    grid[ends >= length] = -1
    for start, end, label in spans:
        if end - start < max_span_length:
            grid[start, end - start] = label
    return grid


def decode(log_probs, lengths, null_label=0):
    """Greedy flat decoding of a batch of span label distributions.

    ``log_probs``: (B, T, L, C) (any scores that rank labels and spans); ``lengths``: (B,).
    Returns, per sentence, a list of ``(start, end, label, score)`` (``end`` inclusive), sorted
    by start, no two overlapping.
    """
    scores, labels = log_probs.max(-1)
    candidates = span_mask(lengths, log_probs.size(1), log_probs.size(2)) & labels.ne(null_label)
    decoded = []
    for sentence in range(log_probs.size(0)):
        starts, widths = candidates[sentence].nonzero(as_tuple=True)
        span_scores = scores[sentence, starts, widths]
        taken, covered = [], set()
        # Ties in score go to the earlier, then shorter, span (a stable sort of the grid order).
        for index in span_scores.argsort(descending=True, stable=True).tolist():
            start, end = starts[index].item(), starts[index].item() + widths[index].item()
            tokens = set(range(start, end + 1))
            if tokens & covered:
                continue
            covered |= tokens
            taken.append((start, end, labels[sentence, start, end - start].item(), span_scores[index].item()))
        decoded.append(sorted(taken))
    return decoded


def detect_scheme(tag_sequences):
    """``bioes`` if any tag has an ``E-`` or ``S-`` prefix, else ``iob2`` (which also reads IOB1)."""
    for tags in tag_sequences:
        if any(tag[:2] in ("E-", "S-") for tag in tags):
            return "bioes"
    return "iob2"


def split_tag(tag, scheme):
    """``(prefix, type)`` of a tag, ``(None, None)`` for ``O``; ValueError naming what the scheme allows."""
    if tag == OUTSIDE:
        return None, None
    prefix, dash, entity_type = tag.partition("-")
    if not dash or not entity_type or prefix not in PREFIXES[scheme]:
        allowed = ", ".join(f"{p}-TYPE" for p in PREFIXES[scheme])
        raise ValueError(f"tag {tag!r} is not {OUTSIDE} or one of {allowed} ({scheme.upper()})")
    return prefix, entity_type


def tags_to_spans(tags, scheme):
    """Entities ``(start, end, type)`` (``end`` inclusive) of a tag sequence in ``scheme``
    (iob1, iob2 or bioes). Raises ValueError ``(position, message)`` for a tag outside the scheme."""
    spans, open_start, open_type = [], None, None
    for position, tag in enumerate(tags):
        try:
            prefix, entity_type = split_tag(tag, scheme)
        except ValueError as error:
            raise ValueError(position, str(error)) from None
        continues = prefix in ("I", "E") and open_type == entity_type
        if open_type is not None and not continues:
            spans.append((open_start, position - 1, open_type))
            open_type = None
        if prefix is not None and not continues:
            open_start, open_type = position, entity_type
        if prefix in ("E", "S"):
            spans.append((open_start, position, open_type))
            open_type = None
    if open_type is not None:
        spans.append((open_start, len(tags) - 1, open_type))
    return spans


def spans_to_iob2(spans, length):
    """IOB2 tags of ``length`` tokens holding non-overlapping entities ``(start, end, type)``."""
    tags = [OUTSIDE] * length
    for start, end, entity_type in spans:
        tags[start] = f"B-{entity_type}"
        for position in range(start + 1, end + 1):
            tags[position] = f"I-{entity_type}"
    return tags
