"""SHAPE: shifted absolute position embeddings.

Kiyono et al., "SHAPE: Shifted Absolute Position Embedding for Transformers"
(EMNLP 2021). Token ``t`` (1-based, padding skipped) of a sequence gets the
sinusoidal embedding of position ``t + k``:

    PE(t + k)    with   k ~ Uniform{0, ..., K-1}   drawn per SEQUENCE at every training forward,
                        k = K (``eval_offset="max"``, the authors' code) or 0 (``"zero"``) at evaluation.

Since a shift of every position leaves the relative distances unchanged, the
model cannot rely on absolute positions and becomes shift invariant; ``K = 0`` is
plain absolute positions (APE). Incremental decoding uses ``step + k`` with the
evaluation offset, so it scores exactly as a full forward pass does. The table
covers ``max_positions + K`` positions.

Positions follow fairseq's convention: they start at ``padding_idx + 1`` and
padding tokens get ``padding_idx`` (a zero row), so with ``K = 0`` this equals
fairseq's ``SinusoidalPositionalEmbedding``.
"""

import math
from typing import Optional

import torch
from torch import nn

from fairseq_plugins.modules.rank_streams import draw_per_rank

EVAL_OFFSETS = ("max", "zero")
# fairseq's own bound on positions (SinusoidalPositionalEmbedding.max_positions).
MAX_TABLE_POSITIONS = 100_000


def sinusoidal_table(num_positions: int, dim: int, padding_idx: int) -> torch.Tensor:
    """``(num_positions, dim)``: sin in the first half, cos in the second (tensor2tensor's layout)."""
    half = dim // 2
    frequencies = torch.exp(torch.arange(half, dtype=torch.float) * -(math.log(10000) / (half - 1)))
    angles = torch.arange(num_positions, dtype=torch.float).unsqueeze(1) * frequencies.unsqueeze(0)
    table = torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)
    if dim % 2 == 1:
        table = torch.cat([table, torch.zeros(num_positions, 1)], dim=1)
    table[padding_idx] = 0
    return table


class ShiftedSinusoidalPositions(nn.Module):
    def __init__(self, dim: int, padding_idx: int, max_positions: int, max_shift: int, eval_offset: str = "max"):
        super().__init__()
        if max_shift < 0:
            raise ValueError(f"--shape-max-shift must be >= 0 (got {max_shift})")
        if max_positions + max_shift > MAX_TABLE_POSITIONS:
            raise ValueError(
                f"--shape-max-shift {max_shift}: max positions {max_positions} + shift exceeds "
                f"{MAX_TABLE_POSITIONS} table rows; use a shift below {MAX_TABLE_POSITIONS - max_positions}"
            )
        if eval_offset not in EVAL_OFFSETS:
            raise ValueError(f"--shape-eval-offset must be one of {', '.join(EVAL_OFFSETS)} (got {eval_offset!r})")
        self.padding_idx = padding_idx
        self.max_positions = max_positions  # read by fairseq to filter over-long sentences
        self.max_shift = max_shift
        self.eval_offset = eval_offset
        # A probe may pin every sequence to one offset (see ``fixed_offset``); None = SHAPE's rule.
        self.fixed_offset: Optional[int] = None
        table = sinusoidal_table(padding_idx + 1 + max_positions + max_shift, dim, padding_idx)
        # Not persistent: a pure function of the arguments, like fairseq's sinusoidal table.
        self.register_buffer("weights", table, persistent=False)

    def offsets(self, batch_size: int, device) -> torch.Tensor:
        """``(batch, 1)`` offset of each sequence."""
        if self.fixed_offset is not None:
            return torch.full((batch_size, 1), self.fixed_offset, dtype=torch.long, device=device)
        if self.training and self.max_shift > 0:
            # Each data-parallel worker shifts its own sequences (rank 0 draws what one process draws).
            return draw_per_rank(lambda generator: torch.randint(0, self.max_shift, (batch_size, 1), device=device, generator=generator), device)
        offset = self.max_shift if self.eval_offset == "max" else 0
        return torch.full((batch_size, 1), offset, dtype=torch.long, device=device)

    def forward(self, tokens, incremental_state=None, timestep: Optional[torch.Tensor] = None, positions=None):
        """``tokens``: ``(batch, time)``; returns ``(batch, time, dim)`` (``(batch, 1, dim)`` per decoding step)."""
        batch_size, length = tokens.shape
        offsets = self.offsets(batch_size, tokens.device)
        if incremental_state is not None:
            step = int(timestep.view(-1)[0]) + 1 if timestep is not None else length
            return self.weights[self.padding_idx + step + offsets]  # (batch, 1, dim)
        not_padding = tokens.ne(self.padding_idx).long()
        positions = (torch.cumsum(not_padding, dim=1) + offsets) * not_padding + self.padding_idx
        return self.weights[positions]
