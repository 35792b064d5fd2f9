"""Relative position representations.

Shaw, Uszkoreit & Vaswani, "Self-Attention with Relative Position Representations"
(NAACL 2018). Self-attention sees the clipped distance from query ``i`` to key ``j``
through two learned vectors of the head dimension ``d_z``, one table per layer shared
by all heads:

    e_ij     = x_i W^Q (x_j W^K + a^K_ij)^T / sqrt(d_z)
    alpha_ij = softmax_j(e_ij)
    z_i      = sum_j alpha_ij (x_j W^V + a^V_ij)

    a^K_ij = w^K[clip(j - i, -k, k)],   a^V_ij = w^V[clip(j - i, -k, k)]

so each table has ``2k + 1`` rows and every distance beyond ``k`` shares the row of
``k`` (Shaw et al. found ``k >= 2`` enough and used 16). No absolute positions are
added to the embeddings.

The ``(T_q, T_k, d_z)`` tensor of ``a_ij`` is never built: the key term is ``q_i . w^K[r]``
for the ``2k + 1`` rows ``r``, gathered at ``r = clip(j - i)``; the value term first sums
``alpha_ij`` per row, then multiplies by ``w^V``. Both are exact.

Queries are the LAST ``T_q`` of the ``T_k`` key positions: in a full forward pass
``T_q = T_k``; at decoding step ``t`` one query (position ``t``) meets the ``t + 1`` keys
cached so far, so incremental decoding scores as the full forward pass does. Padding
at either end leaves the distances between real tokens unchanged.
"""

from typing import Callable, Optional

import torch
from torch import nn


class RelativeAttention(nn.Module):
    """Scaled dot-product attention with Shaw et al.'s relative key and value terms.

    ``key_embeddings`` is ``w^K`` and ``value_embeddings`` is ``w^V``, ``(2k + 1, d_z)``
    each; row ``k`` is distance 0, row ``k + r`` distance ``r``.
    """

    def __init__(self, head_dim: int, max_distance: int):
        super().__init__()
        if max_distance < 1:
            raise ValueError(f"--relative-max-distance must be >= 1 (got {max_distance}); Shaw et al. used 16")
        self.max_distance = max_distance
        self.key_embeddings = nn.Parameter(torch.empty(2 * max_distance + 1, head_dim))
        self.value_embeddings = nn.Parameter(torch.empty(2 * max_distance + 1, head_dim))
        # The paper does not say; fairseq's embedding init at the head dimension, so that
        # q . a^K starts on the scale of q . k.
        nn.init.normal_(self.key_embeddings, std=head_dim**-0.5)
        nn.init.normal_(self.value_embeddings, std=head_dim**-0.5)

    def rows(self, query_len: int, key_len: int, device) -> torch.Tensor:
        """``(query_len, key_len)``: the table row ``clip(j - i, -k, k) + k`` of every pair."""
        key_positions = torch.arange(key_len, device=device)
        query_positions = key_positions[key_len - query_len:]
        distances = key_positions.unsqueeze(0) - query_positions.unsqueeze(1)
        return distances.clamp(-self.max_distance, self.max_distance) + self.max_distance

    def forward(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        attn_mask: Optional[torch.Tensor] = None,
        key_padding_mask: Optional[torch.Tensor] = None,
        dropout: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
    ):
        """``q``: ``(batch, heads, T_q, d_z)``, ``k`` and ``v``: ``(batch, heads, T_k, d_z)``, all
        projected (``x W``) and not yet scaled. ``attn_mask``: additive, ``(T_q, T_k)`` (e.g. -inf
        above the diagonal); ``key_padding_mask``: ``(batch, T_k)``, True at padding; ``dropout``:
        applied to ``alpha``. Returns ``z`` ``(batch, heads, T_q, d_z)`` and ``alpha``
        ``(batch, heads, T_q, T_k)``, as softmax computed it (before dropout)."""
        batch, heads, query_len, _ = q.shape
        key_len = k.size(2)
        rows = self.rows(query_len, key_len, q.device).expand(batch, heads, query_len, key_len)
        q = q * q.size(-1) ** -0.5
        relative_scores = torch.gather(q @ self.key_embeddings.transpose(0, 1), -1, rows)  # q_i . a^K_ij
        scores = q @ k.transpose(-1, -2) + relative_scores
        if attn_mask is not None:
            scores = scores + attn_mask.to(scores.dtype)
        if key_padding_mask is not None:
            scores = scores.masked_fill(key_padding_mask.to(torch.bool)[:, None, None, :], float("-inf"))
        # Softmax in float32 even under fp16, as fairseq's attention does.
        alpha = torch.softmax(scores.float(), dim=-1).type_as(scores)
        weights = dropout(alpha) if dropout is not None else alpha
        weight_per_row = weights.new_zeros(batch, heads, query_len, self.key_embeddings.size(0))
        weight_per_row.scatter_add_(-1, rows, weights)  # sum_j alpha_ij over the pairs sharing a row
        z = weights @ v + weight_per_row @ self.value_embeddings
        return z, alpha
