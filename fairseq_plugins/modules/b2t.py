"""Residual schemes of a Transformer layer, B2T connection included.

Takase et al., "B2T Connection: Serving Stability and Performance in Deep
Transformers" (Findings of ACL 2023). For an encoder layer with input ``x``::

    post_ln:  h = LN1(x + Attn(x))          y = LN2(h + FFN(h))
    pre_ln:   h = x + Attn(LN1(x))          y = h + FFN(LN2(h))       (+ one LN after the stack)
    b2t:      h = LN1(x + Attn(x))          y = LN2(x + h + FFN(h))

and for a decoder layer::

    b2t:      h1 = LN1(x + SelfAttn(x))
              h2 = LN2(h1 + CrossAttn(h1))
              y  = LN3(x + h2 + FFN(h2))

The B2T term ``x`` is the layer's input added once more right before the
layer's last LayerNorm, skipping every LN inside the layer; it carries no
dropout. Every layer gets it, the last one included, and no LN follows the stack.

The authors' code additionally multiplies every non-LN weight matrix of a layer
by ``N ** -0.5`` at initialisation (``N`` = the depth of that stack). That
effect is separable from the connection itself (it alone lifts a Post-LN
decoder's bottom/top gradient ratio at init), so it is a separate function here.
"""

import torch
from torch import nn

RESIDUAL_SCHEMES = ("post_ln", "pre_ln", "b2t")


def b2t_output(layer_input, last_sublayer_input, last_sublayer_output, last_norm):
    """``LN(x + h + F(h))``: the last sub-layer's residual sum plus the layer input.

    ``last_sublayer_output`` is ``F(h)`` after its dropout; ``layer_input`` gets none.
    All tensors are ``(time, batch, channels)``.
    """
    return last_norm(layer_input + last_sublayer_input + last_sublayer_output)


@torch.no_grad()
def rescale_init_(layer: nn.Module, depth: int) -> None:
    """Multiply every weight matrix of ``layer`` that is not a LayerNorm's by ``depth**-0.5``.

    Biases and LayerNorm parameters are untouched (the authors' 2023 recipe).
    """
    scale = depth**-0.5
    for module in layer.modules():
        if isinstance(module, nn.LayerNorm):
            continue
        for name, param in module.named_parameters(recurse=False):
            if name != "bias" and param.dim() >= 2:
                param.mul_(scale)
