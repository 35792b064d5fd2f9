"""fairseq's self-attention with Shaw et al.'s relative positions (the math: modules/relative_attention.py).

``RelativeMultiheadAttention`` keeps fairseq's projections and their names (``q_proj``,
``k_proj``, ``v_proj``, ``out_proj``), its call signature and its cache of keys and
values for incremental decoding (``prev_key``, ``prev_value``, ``prev_key_padding_mask``),
so beam search reorders that cache with fairseq's own ``reorder_incremental_state``.
Its ``forward`` always takes the explicit path: fairseq's fast path through
``F.multi_head_attention_forward`` has no place for the relative terms.
"""

from typing import Dict, Optional

import torch
from torch import Tensor

from fairseq.modules.multihead_attention import MultiheadAttention

from fairseq_plugins.modules.relative_attention import RelativeAttention


class RelativeMultiheadAttention(MultiheadAttention):
    def __init__(self, embed_dim, num_heads, max_distance, dropout=0.0, q_noise=0.0, qn_block_size=8):
        super().__init__(embed_dim, num_heads, dropout=dropout, self_attention=True, q_noise=q_noise,
                         qn_block_size=qn_block_size)
        self.relative_attention = RelativeAttention(self.head_dim, max_distance)

    def split_heads(self, x: Tensor) -> Tensor:
        """``(time, batch, embed_dim)`` -> ``(batch, heads, time, head_dim)``, the layout of fairseq's cache."""
        time, batch, _ = x.shape
        return x.view(time, batch, self.num_heads, self.head_dim).permute(1, 2, 0, 3)

    def forward(
        self,
        query: Tensor,
        key: Optional[Tensor],
        value: Optional[Tensor],
        key_padding_mask: Optional[Tensor] = None,
        incremental_state: Optional[Dict[str, Dict[str, Optional[Tensor]]]] = None,
        need_weights: bool = True,
        static_kv: bool = False,
        attn_mask: Optional[Tensor] = None,
        before_softmax: bool = False,
        need_head_weights: bool = False,
    ):
        """As fairseq's ``MultiheadAttention.forward`` for self-attention (``key`` and ``value`` are
        ``query``): ``(time, batch, embed_dim)`` in and out, weights averaged over heads unless
        ``need_head_weights``."""
        if key is not query or value is not query or static_kv or before_softmax:
            raise ValueError("relative positions are for self-attention: key and value must be the query, "
                             "with static_kv and before_softmax off")
        time, batch, _ = query.shape
        q, k, v = (self.split_heads(projection(query)) for projection in (self.q_proj, self.k_proj, self.v_proj))
        if incremental_state is not None:
            saved = self._get_input_buffer(incremental_state)
            if "prev_key" in saved:
                k = torch.cat([saved["prev_key"], k], dim=2)
                v = torch.cat([saved["prev_value"], v], dim=2)
            key_padding_mask = MultiheadAttention._append_prev_key_padding_mask(
                key_padding_mask=key_padding_mask, prev_key_padding_mask=saved.get("prev_key_padding_mask"),
                batch_size=batch, src_len=k.size(2), static_kv=False,
            )
            saved.update(prev_key=k, prev_value=v, prev_key_padding_mask=key_padding_mask)
            self._set_input_buffer(incremental_state, saved)
        z, alpha = self.relative_attention(q, k, v, attn_mask, key_padding_mask, self.dropout_module)
        attn = self.out_proj(z.permute(2, 0, 1, 3).reshape(time, batch, self.embed_dim))
        if not (need_weights or need_head_weights):
            return attn, None
        weights = alpha.transpose(0, 1)  # (heads, batch, T_q, T_k), as fairseq returns them
        return attn, weights if need_head_weights else weights.mean(dim=0)
