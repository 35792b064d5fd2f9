"""ALONE: all word embeddings from one embedding.

Takase & Kobayashi, "All Word Embeddings from One Embedding" (NeurIPS 2020).
Every word ``w`` of a vocabulary of size ``V`` is built from ONE trainable
vector ``o`` (size ``d``) and a fixed, non-trainable, word-specific filter
``m_w``::

    e_w = FFN(o * m_w),      FFN(x) = W2 ReLU(W1 x)      (no biases; W1: D_inter x d)

with dropout on the ReLU output (``relu_dropout``). ``ffn_layers`` counts the
bias-free linear maps: 1 is ``W1 x`` (d x d), 2 is the paper's ``W2 ReLU(W1 x)``,
and ``k > 2`` inserts ``k - 2`` more ReLU hidden layers of width ``D_inter``.

Memory-efficient filters: ``M`` codebooks of ``c`` codes, each code a random
d-vector; word ``w`` owns one random code index per codebook and::

    m_w = sum_i codebook_i[idx[w, i]]                           (i = 1..M)

    binary: code entries ~ Bernoulli(1 - p ** (1/M)); the sum is clamped to
            [0, 1] (an OR), so an entry of m_w is 1 with probability 1 - p.
    real:   code entries ~ N(0, (std / sqrt(M))^2), so m_w entries ~ N(0, std^2).

Storage is ``M*c*d + V*M`` numbers instead of ``V*d``. The codebooks and the
code indices are persistent buffers (a checkpoint restores the exact filters
by itself); a ``V x d`` filter matrix is never stored: filters are gathered for
the requested ids only. Everything random at construction comes from a private
``torch.Generator`` seeded with ``seed``, so building the module leaves the
global RNG stream untouched.

Initialisation follows the authors' code (github.com/takase/alone_seq2seq,
``OneEmbedding`` in ``fairseq/models/transformer.py``):

- ``o ~ N(0, s^2)`` with ``s = (d + D_inter) ** -0.05`` for binary filters and
  ``s = (d + D_inter) ** -0.3`` for real ones (about 0.64 and 0.066 at
  d=512, D_inter=8192). The code gives no reason for the exponents; a smaller
  ``o`` for real filters fits their unit-scale entries on every coordinate,
  where a binary filter zeroes a fraction p of them. (With ``ffn_layers=1``
  ``D_inter`` is unused by the FFN but still enters ``s``, as in that code.)
- every FFN matrix: Xavier uniform.

``D_inter`` defaults to ``4 * d``, the Transformer's own FFN ratio (the
authors' code defaulted to ``d``; the paper used 8192 for WMT En-De and 1024
for headline generation at d=512).

Padding: the embedding of ``padding_idx`` is zero, in ``forward`` and in row
``padding_idx`` of ``embedding_matrix()``, as for ``nn.Embedding``.

ReLU dropout is applied in ``forward`` (training mode) but not in
``embedding_matrix()``, the tied output projection, as in the authors' code.
It is switched off for good once ``set_num_updates`` reports
``relu_dropout_off_after`` updates (a recipe option).

Cost of the ``V x d`` matrix ``E = [e_w]`` (the tied output projection's weight):

- Training (or any call with autograd on): recomputed at every call, ``chunk_size``
  words at a time, each chunk under activation checkpointing. Only ``E`` and one
  chunk's ``chunk_size x D_inter`` hidden activations are alive at once; the backward
  recomputes a chunk's activations when it needs them (one more FFN forward) instead
  of keeping ``V x D_inter`` of them (1 GiB in float32 at V=32k, D_inter=8192).
  ``chunk_size=None``, or a vocabulary of at most ``chunk_size`` words, computes ``E``
  in one piece and keeps its activations.
- Evaluation (eval mode, autograd off: fairseq-generate, -interactive, -validate,
  -eval-lm, validation during training): computed once, kept outside the state dict
  beside a copy of every parameter and buffer, and reused while each of them still
  equals its copy; ``forward`` then looks words up in it, as ``nn.Embedding`` does.
  Comparing values, not versions or addresses, sees every write: optimizer steps
  (fused ones bump no version), ``load_state_dict``, writes through ``.data`` or a
  ``.numpy()`` view, parameters that are views of a vector written since. The copy
  holds the parameters (``o`` and the FFN: ``2 x D_inter x d``, not ``V x d``) and the
  filter buffers; comparing costs one pass over them, hundreds of times less than
  recomputing ``E`` (``V x D_inter x d``). ``train()`` frees ``E``, which training
  does not use; ``eval()`` keeps it, so validation computes it once however often
  it is called; moves and casts (``.to()``, ``.half()``) free it with the tensors
  it was computed from.
"""

import math
from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.checkpoint import checkpoint

FILTER_KINDS = ("binary", "real")
# Words per chunk of the V x d matrix in training: 128 MiB of float32 activations per
# chunk at D_inter=8192, and chunks large enough to keep a GPU busy.
CHUNK_SIZE = 4096


class KeptMatrix(NamedTuple):
    """``E`` computed without autograd, and what it was computed from, as it was then."""

    settings: tuple  # the attributes E depends on
    copies: list  # copies of the parameters and buffers
    matrix: torch.Tensor


def _unchanged(tensor, copy):
    return tensor.dtype == copy.dtype and tensor.device == copy.device and torch.equal(tensor, copy)


def _check(ok, message):
    if not ok:
        raise ValueError(message)


class AloneEmbedding(nn.Module):
    """``e_w = FFN(o * m_w)`` for ``V`` words from one trainable d-vector ``o``."""

    def __init__(
        self,
        num_embeddings,
        embedding_dim,
        padding_idx,
        *,
        filter_kind="binary",
        codebooks=8,
        codes=64,
        inter_dim=None,
        ffn_layers=2,
        filter_dropout=0.5,
        std=1.0,
        relu_dropout=0.0,
        relu_dropout_off_after=None,
        seed=1,
        chunk_size=CHUNK_SIZE,
    ):
        super().__init__()
        _check(filter_kind in FILTER_KINDS,
               f"--alone-filter must be one of {', '.join(FILTER_KINDS)} (got {filter_kind!r})")
        _check(codes >= 2, f"--alone-codes must be >= 2 (got {codes})")
        _check(codebooks >= 1, f"--alone-codebooks must be >= 1 (got {codebooks})")
        _check(0.0 < filter_dropout < 1.0,
               f"--alone-dropout must be in (0, 1) (got {filter_dropout})")
        _check(ffn_layers >= 1, f"--alone-ffn-layers must be >= 1 (got {ffn_layers})")
        _check(0.0 <= relu_dropout < 1.0, f"--alone-relu-dropout must be in [0, 1) (got {relu_dropout})")
        _check(std > 0, f"--alone-std must be > 0 (got {std})")
        inter_dim = 4 * embedding_dim if inter_dim is None else inter_dim
        _check(inter_dim >= 1, f"--alone-inter-dim must be >= 1 (got {inter_dim})")
        _check(relu_dropout_off_after is None or relu_dropout_off_after >= 0,
               f"--alone-relu-dropout-off-after must be >= 0 (got {relu_dropout_off_after})")
        _check(num_embeddings >= 1 and embedding_dim >= 1,
               f"ALONE needs a vocabulary and a dimension of at least 1 (got {num_embeddings} x {embedding_dim})")
        _check(padding_idx is None or 0 <= padding_idx < num_embeddings,
               f"ALONE padding_idx must be in [0, {num_embeddings}) (got {padding_idx})")
        _check(chunk_size is None or chunk_size >= 1, f"ALONE chunk_size must be >= 1 or None (got {chunk_size})")

        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.padding_idx = padding_idx
        self.filter_kind = filter_kind
        self.num_codebooks = codebooks
        self.num_codes = codes
        self.inter_dim = inter_dim
        self.filter_dropout = filter_dropout
        self.std = std
        self.relu_dropout = relu_dropout
        self.relu_dropout_off_after = relu_dropout_off_after
        self.relu_dropout_on = True
        self.chunk_size = chunk_size
        # E for evaluation: a plain attribute, so neither the state dict nor .to() sees it.
        self._kept_matrix = None

        generator = torch.Generator().manual_seed(seed)
        d = embedding_dim
        if filter_kind == "binary":
            keep = 1.0 - filter_dropout ** (1.0 / codebooks)
            book = (torch.rand(codebooks, codes, d, generator=generator) < keep).float()
        else:
            book = torch.randn(codebooks, codes, d, generator=generator) * (std / math.sqrt(codebooks))
        self.register_buffer("codebooks", book)  # (M, c, d)
        self.register_buffer(
            "code_indices", torch.randint(0, codes, (num_embeddings, codebooks), generator=generator)
        )  # (V, M), long

        # Trainable: o and the bias-free FFN. skip_init builds the Linear layers without
        # running their default init (which would draw from the global RNG).
        widths = [d] + [inter_dim] * (ffn_layers - 1) + [d]
        self.o = nn.Parameter(torch.empty(d))
        self.ffn = nn.ModuleList(
            nn.utils.skip_init(nn.Linear, n_in, n_out, bias=False) for n_in, n_out in zip(widths, widths[1:])
        )
        o_std = (d + inter_dim) ** (-0.05 if filter_kind == "binary" else -0.3)
        with torch.no_grad():
            self.o.normal_(0.0, o_std, generator=generator)
            for linear in self.ffn:
                nn.init.xavier_uniform_(linear.weight, generator=generator)

    def extra_repr(self):
        return (
            f"{self.num_embeddings}, {self.embedding_dim}, padding_idx={self.padding_idx}, "
            f"filter_kind={self.filter_kind}, codebooks={self.num_codebooks}, codes={self.num_codes}, "
            f"inter_dim={self.inter_dim}, relu_dropout={self.relu_dropout}"
        )

    def filters(self, ids):
        """The fixed filters ``m_w`` of ``ids`` (any shape ``S``): ``S + (d,)``, built on the fly."""
        codes = self.code_indices[ids]  # S + (M,)
        m = self.codebooks[0][codes[..., 0]]  # S + (d,); one codebook at a time keeps memory at S x d
        for i in range(1, self.num_codebooks):
            m = m + self.codebooks[i][codes[..., i]]
        if self.filter_kind == "binary":
            m = m.clamp(max=1.0)  # OR of the M binary codes
        return m

    def _ffn(self, x, relu_dropout):
        for linear in self.ffn[:-1]:
            x = F.dropout(F.relu(linear(x)), p=relu_dropout, training=self.training)
        return self.ffn[-1](x)

    def _active_relu_dropout(self):
        return self.relu_dropout if self.relu_dropout_on else 0.0

    def forward(self, tokens):
        """Embeddings of ``tokens`` (LongTensor of any shape ``S``): ``S + (d,)``; padding gives zeros."""
        if self._reuses_matrix():
            return F.embedding(tokens, self.embedding_matrix())  # row padding_idx of E is zero
        e = self._ffn(self.o * self.filters(tokens), self._active_relu_dropout())
        if self.padding_idx is not None:
            e = e.masked_fill(tokens.eq(self.padding_idx).unsqueeze(-1), 0.0)
        return e

    def embedding_matrix(self):
        """All ``V`` embeddings ``(V, d)``, no ReLU dropout: kept and reused in evaluation, else recomputed."""
        if not self._reuses_matrix():
            return self._compute_matrix()
        sources = [*self.parameters(), *self.buffers()]
        if not self._kept_matrix_is_current(sources):
            self._kept_matrix = None  # free the old E before computing the new one
            # In the parameters' dtype, as nn.Embedding's weight is, whatever autocast is on now.
            with torch.autocast(self.o.device.type, enabled=False):
                self._kept_matrix = KeptMatrix(self._matrix_settings(), [t.clone() for t in sources],
                                               self._compute_matrix())
        return self._kept_matrix.matrix

    def _kept_matrix_is_current(self, sources):
        kept = self._kept_matrix
        return (kept is not None and kept.settings == self._matrix_settings() and len(kept.copies) == len(sources)
                and all(map(_unchanged, sources, kept.copies)))

    def _matrix_settings(self):
        return self.num_embeddings, self.padding_idx, self.filter_kind, self.num_codebooks

    def train(self, mode=True):
        if mode:
            self._kept_matrix = None  # training recomputes E at every call
        return super().train(mode)

    def _apply(self, fn, recurse=True):
        # Moves and casts make new tensors: free E and the copies on the old device or dtype.
        self._kept_matrix = None
        return super()._apply(fn, recurse)

    def _reuses_matrix(self):
        return not self.training and not torch.is_grad_enabled()

    def _rows(self, ids):
        """``e_w`` of the words ``ids`` (1-D): ``(len(ids), d)``, no ReLU dropout, padding not zeroed."""
        return self._ffn(self.o * self.filters(ids), 0.0)

    def _compute_matrix(self):
        ids = torch.arange(self.num_embeddings, device=self.code_indices.device)
        if self.chunk_size is None or self.num_embeddings <= self.chunk_size:
            e = self._rows(ids)
        elif torch.is_grad_enabled():
            e = torch.cat([checkpoint(self._rows, chunk, use_reentrant=False) for chunk in ids.split(self.chunk_size)])
        else:
            e = torch.cat([self._rows(chunk) for chunk in ids.split(self.chunk_size)])
        if self.padding_idx is not None:
            e = e.index_fill(0, ids.new_tensor([self.padding_idx]), 0.0)
        return e

    def set_num_updates(self, num_updates):
        """ReLU dropout is on before ``relu_dropout_off_after`` updates and off from then on."""
        self.relu_dropout_on = self.relu_dropout_off_after is None or num_updates < self.relu_dropout_off_after


@torch.no_grad()
def filter_statistics(embedding: AloneEmbedding, chunk_size=4096):
    """Summary of ``embedding``'s filters, computed ``chunk_size`` words at a time.

    ``density``: fraction of nonzero filter entries; ``mean``/``std``: of all entries
    (population std); ``distinct_fraction``: distinct rows of the code-index table / V.
    """
    vocab, dim = embedding.num_embeddings, embedding.embedding_dim
    device = embedding.code_indices.device
    nonzero, total, total_sq = 0, 0.0, 0.0
    for start in range(0, vocab, chunk_size):
        m = embedding.filters(torch.arange(start, min(start + chunk_size, vocab), device=device)).double()
        nonzero += int(torch.count_nonzero(m))
        total += float(m.sum())
        total_sq += float(m.square().sum())
    count = vocab * dim
    mean = total / count
    return {
        "density": nonzero / count,
        "mean": mean,
        "std": math.sqrt(max(total_sq / count - mean * mean, 0.0)),
        "distinct_fraction": torch.unique(embedding.code_indices, dim=0).shape[0] / vocab,
        "vocab": vocab,
        "dim": dim,
        "codebooks": embedding.num_codebooks,
        "codes": embedding.num_codes,
    }
