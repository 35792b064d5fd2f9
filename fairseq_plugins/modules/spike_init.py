"""Spike No More: small sub-layers at initialisation and a large shortcut from the embeddings.

Takase et al., "Spike No More: Stabilizing the Pre-training of Large Language
Models" (2023). In a Pre-LN Transformer of ``N`` layers and width ``d`` the
gradient norm stays bounded (no loss spikes) when

1. the sub-layers are small: the "small" init scheme (``small_init_``)::

       W ~ N(0, 2 / (5 d))                      every weight matrix of every layer
       W ~ N(0, 2 / (5 d)) / sqrt(2 N)          W_O (attention ``out_proj``) and W_2 (FFN ``fc2``)

2. the shortcut is large, i.e. its entries have std near 1. Embeddings drawn with the
   same std ``sqrt(2 / (5 d))`` make it tiny, so the embedding output ``e`` is changed
   (``EmbeddingTreatment``, applied before positions are added)::

       vanilla:    e                                       (spikes: the paper's baseline)
       scaled:     e * sqrt(d)                             (std sqrt(2/5) ~ 0.632 for any d)
       layernorm:  LN(e)                                   (std 1 at init)
       detach:     a * e + (1 - a) * e.detach()            (a = 0.1; same value, gradient x a;
                                                            a comparison that does NOT fix it)

   or the embeddings are drawn with std 1 (``init_embedding_``) and kept out of
   weight decay (``--no-weight-decay-embeddings``, optimizer_groups.py), which would otherwise pull
   them back towards zero.

"fairseq" is fairseq's own init, left as is (nothing to do here). Note that
fairseq's Transformer multiplies embeddings by ``sqrt(d)`` itself unless
``--no-scale-embedding`` is set: "scaled" here is that factor, so a model using
this treatment must not apply fairseq's as well.
"""

import math
from typing import Optional, Sequence

import torch
from torch import Tensor, nn

INIT_SCHEMES = ("fairseq", "small")
EMBED_TREATMENTS = ("vanilla", "scaled", "layernorm", "detach")
# Sub-modules whose output is added to the residual stream: divided by sqrt(2N).
RESIDUAL_OUTPUT_NAMES = ("out_proj", "fc2")


def check_init_scheme(scheme: str) -> str:
    if scheme not in INIT_SCHEMES:
        raise ValueError(f"--init-scheme must be one of {', '.join(INIT_SCHEMES)} (got {scheme!r})")
    return scheme


def small_std(dim: int) -> float:
    """``sqrt(2 / (5 d))``: the std of every weight matrix under the "small" scheme."""
    return math.sqrt(2.0 / (5.0 * dim))


def _is_residual_output(module_name: str) -> bool:
    return module_name.rsplit(".", 1)[-1] in RESIDUAL_OUTPUT_NAMES


@torch.no_grad()
def small_init_(layers: Sequence[nn.Module], dim: int) -> None:
    """'small' scheme: initialise the Transformer ``layers`` (one stack of ``N = len(layers)``) in place.

    - every weight matrix (a parameter with ``dim() >= 2`` whose name does not start
      with ``bias``) ~ ``N(0, 2/(5*dim))``;
    - those of any sub-module named ``out_proj`` (attention output, W_O; cross-attention
      included) or ``fc2`` (FFN second layer, W_2) further divided by ``sqrt(2*N)``;
    - biases (any parameter whose name starts with ``bias``, fairseq's ``bias_k``/``bias_v``
      included) -> 0;
    - LayerNorm weight -> 1 and bias -> 0 (the paper does not say; this is PyTorch's and
      fairseq's default, so the choice only matters for LayerNorms trained before);
    - any other 1-d parameter is left untouched.

    Draws from the global RNG, as fairseq's own init does. Embeddings and norms outside
    the layers (e.g. the Pre-LN final LayerNorm) are the caller's.
    """
    if dim <= 0:
        raise ValueError(f"small init needs a positive model dimension (got {dim})")
    depth = len(layers)
    if depth == 0:
        raise ValueError("small init needs at least one layer (got none)")
    for index, layer in enumerate(layers):  # check every layer before changing any
        if not any(_is_residual_output(name) for name, _ in layer.named_modules()):
            raise ValueError(
                f"small init: layer {index} has no sub-module named {' or '.join(RESIDUAL_OUTPUT_NAMES)} "
                f"(expected fairseq's names)"
            )
    std = small_std(dim)
    residual_std = std / math.sqrt(2 * depth)
    for layer in layers:
        for module_name, module in layer.named_modules():
            # By class name too: apex's FusedLayerNorm (fairseq's LayerNorm on GPU) is no nn.LayerNorm.
            if isinstance(module, nn.LayerNorm) or type(module).__name__.endswith("LayerNorm"):
                if getattr(module, "weight", None) is not None:
                    module.weight.fill_(1.0)
                if getattr(module, "bias", None) is not None:
                    module.bias.zero_()
                continue
            module_std = residual_std if _is_residual_output(module_name) else std
            for name, param in module.named_parameters(recurse=False):
                if name.startswith("bias"):
                    param.zero_()
                elif param.dim() >= 2:
                    param.normal_(0.0, module_std)


@torch.no_grad()
def init_embedding_(weight: Tensor, std: float, padding_idx: Optional[int]) -> None:
    """``weight ~ N(0, std^2)`` in place, row ``padding_idx`` (if any) zero.

    ``std = sqrt(2/(5d))`` is the vanilla "small" embedding, ``std = 1`` the paper's
    practical variant.
    """
    if not std > 0:  # also rejects NaN
        raise ValueError(f"--embed-init-std must be positive (got {std})")
    weight.normal_(0.0, std)
    if padding_idx is not None:
        weight[padding_idx].zero_()


class EmbeddingTreatment(nn.Module):
    """Applied to the token embedding output ``e`` ``(..., d)``, before positions are added.

    vanilla: ``e``;  scaled: ``e * sqrt(d)``;  layernorm: ``LN(e)`` (its own LayerNorm,
    ``self.layer_norm``, present only for this kind);  detach: ``a*e + (1-a)*e.detach()``
    with ``a = detach_alpha``: same forward value, gradient to ``e`` multiplied by ``a``.
    """

    def __init__(self, kind: str, dim: int, detach_alpha: float = 0.1):
        super().__init__()
        if kind not in EMBED_TREATMENTS:
            raise ValueError(f"--embed-treatment must be one of {', '.join(EMBED_TREATMENTS)} (got {kind!r})")
        if not 0.0 <= detach_alpha <= 1.0:
            raise ValueError(f"--embed-detach-alpha must be in [0, 1] (got {detach_alpha})")
        if dim <= 0:
            raise ValueError(f"the embedding treatment needs a positive dimension (got {dim})")
        self.kind = kind
        self.dim = dim
        self.detach_alpha = float(detach_alpha)
        self.scale = math.sqrt(dim)
        self.layer_norm = nn.LayerNorm(dim) if kind == "layernorm" else None

    def extra_repr(self):
        extra = f", detach_alpha={self.detach_alpha}" if self.kind == "detach" else ""
        return f"{self.kind}, dim={self.dim}{extra}"

    def forward(self, embeddings: Tensor) -> Tensor:
        if self.kind == "scaled":
            return embeddings * self.scale
        if self.kind == "layernorm":
            return self.layer_norm(embeddings)
        if self.kind == "detach":
            a = self.detach_alpha
            return a * embeddings + (1.0 - a) * embeddings.detach()
        return embeddings


def pre_ln_sublayer_bound(first: Tensor, second: Tensor, norm_weight: Optional[Tensor], input_std: float) -> float:
    """The per-sub-layer term of the paper's gradient-norm bound for a Pre-LN layer at init.

    A Pre-LN sub-layer maps ``x -> x + F(LN(x))``, so ``||dy/dx||_2 <= 1 + ||dF/dz||_2 ||dLN(x)/dx||_2``:

        ||dLN(x)/dx||_2  ~  max|gamma| / sigma_x     (x: d entries of std sigma_x)
        ||dF/dz||_2     <=  ||W_first||_2 ||W_second||_2

    where F is an FFN (``W_first = fc1``, ``W_second = fc2``, activation slope ~1) or
    attention (``W_first = W_V``, ``W_second = W_O``, attention probabilities held fixed).
    Returns ``||W_first||_2 ||W_second||_2 max|gamma| / sigma_x``. With "small" init the
    product of spectral norms does not depend on d, so the term follows ``1 / sigma_x``:
    it grows like sqrt(d) when the shortcut's std falls like sqrt(2/(5d)) (vanilla
    embeddings) and stays flat when it is ~1 (scaled or layernorm embeddings).
    """
    if not input_std > 0:
        raise ValueError(f"the sub-layer input must have a positive std (got {input_std})")
    gain = 1.0 if norm_weight is None else norm_weight.detach().abs().max().item()
    spectral = [torch.linalg.matrix_norm(w.detach().float(), ord=2).item() for w in (first, second)]
    return spectral[0] * spectral[1] * gain / input_std
