"""Length-controlled positional encodings for the decoder: LRPE and LDPE.

Takase & Okazaki, "Positional Encoding to Control Output Sequence Length" (NAACL 2019),
used by ALONE's headline generation. The decoder's sinusoidal positions are replaced by
encodings that also see the desired output length ``len``; ``pos`` is how much output has
been produced when the decoder predicts the next token (0 at the start symbol), ``d`` the width:

    LRPE (length ratio):       PE(pos, len, 2i)   = sin(pos / len ** (2i / d))
                               PE(pos, len, 2i+1) = cos(pos / len ** (2i / d))
    LDPE (length difference):  PE(pos, len, 2i)   = sin((len - pos) / 10000 ** (2i / d))
                               PE(pos, len, 2i+1) = cos((len - pos) / 10000 ** (2i / d))

LDPE tells each step how much output remains (it depends on ``len - pos`` only); LRPE stretches
its wavelengths with the length, its last dimensions approaching ``sin(pos / len)``, the ratio. In training ``len`` is the length of
the reference output; at decoding it is the length the user asks for, so the same model writes
shorter or longer outputs on request. The paper places the sin/cos pairs interleaved as above.

Length is counted in one of two units:

- ``tokens``: ``pos`` is the number of tokens produced so far, ``len`` the number of output tokens
  (end of sentence excluded);
- ``chars``: ``pos`` is the number of characters produced so far, ``len`` the characters of the
  whole output (the paper's choice for headlines, whose evaluation truncates at 75 bytes), counted
  as UTF-8 bytes of the detokenized text (characters, for ASCII). With a sentencepiece vocabulary
  (any entry starts with the word-start mark ``▁``) a piece adds its bytes with ``▁`` counted as
  the space it stands for, and a piece without it (a word continuation, attached punctuation) adds
  just its bytes. With ``@@``-continued BPE a token adds its bytes without ``@@``, and a word-final
  token one more for the space that follows it. Special symbols add 0.

Padding tokens get a zero vector, as fairseq's positions do.

The paper's "+PE" variants (``lrpe+pe``, ``ldpe+pe``) keep the ordinary sinusoidal positions and add
the length encoding to them (``SummedPositions``): the decoder sees both where it is and how much
output is left.
"""

from typing import Optional, Sequence

import torch
from torch import nn

LENGTH_ENCODINGS = ("lrpe", "ldpe")
WITH_SINUSOIDAL = "+pe"  # "lrpe+pe": the length encoding added to the ordinary sinusoidal positions
LENGTH_UNITS = ("tokens", "chars")
SENTENCEPIECE_SPACE = "\u2581"
BPE_CONTINUATION = "@@"


def interleaved_sinusoid(angles: torch.Tensor) -> torch.Tensor:
    """``angles``: ``(..., d/2)`` -> ``(..., d)`` with sin at even and cos at odd dimensions."""
    return torch.stack([torch.sin(angles), torch.cos(angles)], dim=-1).flatten(-2)


def frequency_exponents(dim: int, device=None) -> torch.Tensor:
    """``2i / d`` for ``i = 0 .. d/2 - 1``."""
    return torch.arange(0, dim, 2, dtype=torch.float, device=device) / dim


def length_ratio_encoding(positions: torch.Tensor, lengths: torch.Tensor, dim: int) -> torch.Tensor:
    """LRPE. ``positions``: ``(batch, time)``, ``lengths``: ``(batch, 1)``; returns ``(batch, time, dim)``."""
    # A length below 1 would make len ** (2i/d) vanish for i > 0; 1 is the shortest real output.
    base = lengths.clamp(min=1).float().unsqueeze(-1)  # (batch, 1, 1)
    angles = positions.float().unsqueeze(-1) / base ** frequency_exponents(dim, positions.device)
    return interleaved_sinusoid(angles)


def length_difference_encoding(positions: torch.Tensor, lengths: torch.Tensor, dim: int) -> torch.Tensor:
    """LDPE. Same shapes as :func:`length_ratio_encoding`."""
    remaining = (lengths - positions).float().unsqueeze(-1)  # (batch, time, 1); negative past the length
    angles = remaining / 10000.0 ** frequency_exponents(dim, positions.device)
    return interleaved_sinusoid(angles)


ENCODINGS = {"lrpe": length_ratio_encoding, "ldpe": length_difference_encoding}


def token_counts(num_symbols: int, special_indices: Sequence[int]) -> torch.Tensor:
    """``tokens`` unit: every vocabulary entry adds 1 to the output, special symbols 0."""
    counts = torch.ones(num_symbols, dtype=torch.long)
    counts[list(special_indices)] = 0
    return counts


def token_character_counts(symbols: Sequence[str], special_indices: Sequence[int]) -> torch.Tensor:
    """``chars`` unit: bytes each vocabulary entry adds to the detokenized output (see the module docstring)."""
    sentencepiece = any(symbol.startswith(SENTENCEPIECE_SPACE) for symbol in symbols)
    counts = []
    for symbol in symbols:
        if sentencepiece:
            counts.append(len(symbol.replace(SENTENCEPIECE_SPACE, " ").encode()))
        elif symbol.endswith(BPE_CONTINUATION):
            counts.append(len(symbol[: -len(BPE_CONTINUATION)].encode()))
        else:
            counts.append(len(symbol.encode()) + 1)
    counts = torch.tensor(counts, dtype=torch.long)
    counts[list(special_indices)] = 0
    return counts


class LengthControlledPositions(nn.Module):
    """Decoder positions that encode the output length (LRPE or LDPE).

    ``token_amounts``: ``(V,)`` output each vocabulary entry stands for in the chosen unit
    (:func:`token_counts` or :func:`token_character_counts`). In a full forward pass (training,
    validation, scoring a reference) the length is that of the decoder input itself. In
    incremental decoding it is ``desired_length``, set by the caller before decoding (the
    ``length_controlled_translation`` task's ``--desired-length``); decoding without it is an error.
    """

    def __init__(self, dim: int, padding_idx: int, max_positions: int, encoding: str, token_amounts: torch.Tensor):
        super().__init__()
        if encoding not in ENCODINGS:
            raise ValueError(f"--positions {encoding!r}: length encodings are {', '.join(LENGTH_ENCODINGS)}")
        if dim % 2:
            raise ValueError(f"--positions {encoding} needs an even decoder embedding dimension (got {dim})")
        self.dim = dim
        self.padding_idx = padding_idx
        self.max_positions = max_positions  # read by fairseq to filter over-long sentences
        self.encoding = encoding
        self.desired_length: Optional[int] = None
        # A function of the dictionary, rebuilt with the model: not part of the checkpoint.
        self.register_buffer("token_amounts", token_amounts, persistent=False)

    def forward(self, tokens: torch.Tensor, incremental_state=None, timestep=None, positions=None) -> torch.Tensor:
        """``tokens``: ``(batch, time)`` decoder input (start symbol first); returns ``(batch, time, dim)``.

        The input at step t is the output token t, so the output produced when step t predicts the
        next token includes it: ``pos`` is the running sum of the inputs' amounts (the start
        symbol's is 0).
        """
        not_padding = tokens.ne(self.padding_idx)
        produced = self.token_amounts[tokens] * not_padding
        produced_so_far = torch.cumsum(produced, dim=1)
        if incremental_state is None:
            lengths = produced_so_far[:, -1:]
        elif self.desired_length is None:
            raise ValueError("--positions lrpe/ldpe: decoding needs the desired output length "
                             "(--task length_controlled_translation --desired-length N)")
        else:
            lengths = torch.full_like(produced_so_far[:, :1], self.desired_length)
        encoded = ENCODINGS[self.encoding](produced_so_far, lengths, self.dim)
        return encoded * not_padding.unsqueeze(-1).to(encoded.dtype)


class SummedPositions(nn.Module):
    """The sum of two position modules with fairseq's interface (``forward(tokens, incremental_state)``),
    e.g. sinusoidal positions plus a length encoding (the "+PE" variants)."""

    def __init__(self, positions: nn.Module, length_positions: nn.Module):
        super().__init__()
        self.positions = positions
        self.length_positions = length_positions
        self.max_positions = min(positions.max_positions, length_positions.max_positions)

    def forward(self, tokens: torch.Tensor, incremental_state=None, timestep=None, positions=None) -> torch.Tensor:
        # In incremental decoding fairseq's sinusoidal module returns the last step only (batch, 1, dim);
        # the decoder keeps the last step of the sum, which broadcasting leaves exact.
        return (self.positions(tokens, incremental_state=incremental_state)
                + self.length_positions(tokens, incremental_state=incremental_state))
