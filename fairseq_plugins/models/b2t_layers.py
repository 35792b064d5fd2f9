"""fairseq Transformer layers with the B2T connection (equations in modules/b2t.py).

They subclass fairseq's layers, so parameters keep fairseq's names
(``self_attn``, ``self_attn_layer_norm``, ``encoder_attn``, ``fc1``, ``fc2``,
``final_layer_norm``) and only ``forward`` differs.
"""

from typing import Dict, List, Optional

import torch
from torch import Tensor

from fairseq.modules.transformer_layer import (
    TransformerDecoderLayerBase,
    TransformerEncoderLayerBase,
)

from fairseq_plugins.errors import ConfigError
from fairseq_plugins.modules.b2t import b2t_output


class B2TEncoderLayer(TransformerEncoderLayerBase):
    """``h = LN1(x + Attn(x)); y = LN2(x + h + FFN(h))``."""

    def forward(self, x, encoder_padding_mask: Optional[Tensor], attn_mask: Optional[Tensor] = None):
        if attn_mask is not None:
            # fairseq's convention: 1 = masked, turned into a large negative bias.
            attn_mask = attn_mask.masked_fill(attn_mask.to(torch.bool), -1e8 if x.dtype == torch.float32 else -1e4)
        layer_input = x
        x, _ = self.self_attn(
            query=x, key=x, value=x, key_padding_mask=encoder_padding_mask, need_weights=False, attn_mask=attn_mask
        )
        h = self.self_attn_layer_norm(layer_input + self.dropout_module(x))
        ffn = self.fc2(self.activation_dropout_module(self.activation_fn(self.fc1(h))))
        y = b2t_output(layer_input, h, self.dropout_module(ffn), self.final_layer_norm)
        if self.return_fc and not torch.jit.is_scripting():
            return y, ffn
        return y


class B2TDecoderLayer(TransformerDecoderLayerBase):
    """``h1 = LN1(x + SelfAttn(x)); h2 = LN2(h1 + CrossAttn(h1)); y = LN3(x + h2 + FFN(h2))``."""

    def __init__(self, cfg, no_encoder_attn=False, add_bias_kv=False, add_zero_attn=False):
        super().__init__(cfg, no_encoder_attn, add_bias_kv, add_zero_attn)
        unsupported = {
            "--cross-self-attention": self.cross_self_attention,
            "--scale-attn": self.attn_ln is not None,
            "--scale-heads": self.c_attn is not None,
            "--scale-fc": self.ffn_layernorm is not None,
            "--scale-resids": self.w_resid is not None,
        }
        for flag, enabled in unsupported.items():
            if enabled:
                raise ConfigError(f"{flag} is not supported with --decoder-residual b2t; drop it or use post_ln/pre_ln")

    def forward(
        self,
        x,
        encoder_out: Optional[Tensor] = None,
        encoder_padding_mask: Optional[Tensor] = None,
        incremental_state: Optional[Dict[str, Dict[str, Optional[Tensor]]]] = None,
        prev_self_attn_state: Optional[List[Tensor]] = None,
        prev_attn_state: Optional[List[Tensor]] = None,
        self_attn_mask: Optional[Tensor] = None,
        self_attn_padding_mask: Optional[Tensor] = None,
        need_attn: bool = False,
        need_head_weights: bool = False,
    ):
        # fairseq's decoders never pass explicit previous states; only exported
        # ONNX graphs did, and those are not supported here.
        if prev_self_attn_state is not None or prev_attn_state is not None:
            raise ValueError("B2TDecoderLayer keeps its attention state in incremental_state only")
        need_attn = need_attn or need_head_weights

        layer_input = x
        x, attn = self.self_attn(
            query=x,
            key=x,
            value=x,
            key_padding_mask=self_attn_padding_mask,
            incremental_state=incremental_state,
            need_weights=False,
            attn_mask=self_attn_mask,
        )
        h = self.self_attn_layer_norm(layer_input + self.dropout_module(x))

        if self.encoder_attn is not None and encoder_out is not None:
            x, attn = self.encoder_attn(
                query=h,
                key=encoder_out,
                value=encoder_out,
                key_padding_mask=encoder_padding_mask,
                incremental_state=incremental_state,
                static_kv=True,
                need_weights=need_attn or (not self.training and self.need_attn),
                need_head_weights=need_head_weights,
            )
            h = self.encoder_attn_layer_norm(h + self.dropout_module(x))

        ffn = self.fc2(self.activation_dropout_module(self.activation_fn(self.fc1(h))))
        return b2t_output(layer_input, h, self.dropout_module(ffn), self.final_layer_norm), attn, None
