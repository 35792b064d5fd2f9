"""Turn-over dropout: the influence of one training instance from two forward passes.

Kobayashi, Yokoi, Suzuki & Inui, "Efficient Estimation of Influence of a
Training Instance" (SustaiNLP 2020). Every training instance ``i`` owns a fixed
binary mask ``m_i`` (about half of the units on). Training on ``i`` uses only
its sub-network::

    h = x * m_i / 0.5

so the flipped sub-network ``1 - m_i`` never sees ``i``. The influence of a
training instance ``j`` on a test instance ``t`` is the loss difference between
the sub-network that did not learn from ``j`` and the one that did::

    I(j, t) = L(t; 1 - m_j) - L(t; m_j)

Positive: ``j`` helped ``t`` (without it, the loss is higher); negative: ``j``
hurt ``t``. ``I(j, j)`` is the self-influence (large for instances the
network could only memorise, e.g. mislabelled ones). Without ids the layer is
the identity: normal inference uses the full network.

Masks are a hash of (instance id, unit index, layer seed), not draws from an
RNG stream: they are keyed by a stable instance id (never by batch position),
need no storage for millions of instances, and are about 50% dense for every
id below 2**63 (a draw seeded by the id alone is not: some derived code
produced all-ones masks for large ids). The layer seed is a persistent
buffer, so a checkpoint regenerates its masks bit-exactly. The hash is
MurmurHash3's 32-bit finaliser, computed on int64 tensors with 16-bit partial
products so that no product overflows.

The keep probability is fixed at 0.5: only then do a mask and its flip keep
the same number of units and share the scale ``1 / 0.5``.
"""

import contextlib

import torch
from torch import nn

KEEP = 0.5
_LOW32 = 0xFFFFFFFF


def _mul32(h, constant):
    """``(h * constant) mod 2**32`` for int64 ``h`` in [0, 2**32) without int64 overflow."""
    low, high = constant & 0xFFFF, constant >> 16
    return (h * low + (((h * high) & 0xFFFF) << 16)) & _LOW32


def _fmix32(h):
    """MurmurHash3 finaliser: a bijection on 32-bit values in which every input bit flips
    each output bit with probability about 1/2."""
    h = h ^ (h >> 16)
    h = _mul32(h, 0x85EBCA6B)
    h = h ^ (h >> 13)
    h = _mul32(h, 0xC2B2AE35)
    return h ^ (h >> 16)


def instance_masks(ids, dim, seed):
    """Boolean masks ``m_i`` of shape (len(ids), dim) for int64 instance ids >= 0."""
    ids = ids.to(torch.int64)
    if ids.numel() and int(ids.min()) < 0:
        raise ValueError(f"turn-over dropout ids must be >= 0, got {int(ids.min())}")
    seed = int(seed) & _LOW32
    # One 32-bit key per instance from both halves of its 63-bit id.
    key = _fmix32(_fmix32((ids & _LOW32) ^ seed) ^ (ids >> 32))
    units = _fmix32(torch.arange(dim, dtype=torch.int64, device=ids.device) ^ _fmix32(torch.tensor(seed ^ 0x9E3779B9)))
    bits = _fmix32(key[:, None] ^ units[None, :])
    return (bits >> 31).to(torch.bool)


class TurnOverDropout(nn.Module):
    """``x * m_i / 0.5`` along the last dimension for the instance ids set on it.

    ``use_instances`` sets the ids (and ``flip``) around a forward pass; the batch
    dimension of ``x`` is ``batch_dim`` (1 for fairseq's T x B x C). Mask width is
    the input's last dimension.
    """

    def __init__(self, seed, batch_dim=0):
        super().__init__()
        self.batch_dim = batch_dim
        self.register_buffer("seed", torch.tensor(int(seed) & _LOW32, dtype=torch.int64))
        self.ids = None
        self.flip = False
        self.rows_per_id = None

    def masks(self, ids, dim):
        return instance_masks(ids, dim, int(self.seed))

    def forward(self, x):
        if self.ids is None:
            return x
        bd, count = self.batch_dim, self.ids.numel()
        # Pair mode: block k of the batch is every one of the n test rows under ids[k]; the
        # first layer reached gets the n rows once and broadcasts them to count * n rows.
        n = self.rows_per_id or 1
        allowed = (count,) if self.rows_per_id is None else (n, count * n)
        if x.size(bd) not in allowed:
            raise ValueError(
                f"turn-over dropout got input {tuple(x.shape)} for {count * n} rows of instance ids "
                f"(batch dimension {bd})"
            )
        mask = self.masks(self.ids.to(x.device), x.size(-1))
        if self.flip:
            mask = ~mask
        scale = mask.to(x.dtype) / KEEP  # (count, dim): small; the one large op is the product below
        grouped = x.unflatten(bd, (x.size(bd) // n, n))  # (..., count or 1, n, ..., dim)
        shape = [1] * grouped.dim()
        shape[bd], shape[-1] = count, scale.size(1)
        return (grouped * scale.view(shape)).flatten(bd, bd + 1)

    def extra_repr(self):
        return f"seed={int(self.seed)}, batch_dim={self.batch_dim}"


def turnover_layers(model):
    return [m for m in model.modules() if isinstance(m, TurnOverDropout)]


@contextlib.contextmanager
def use_instances(model, ids, flip=False, rows_per_id=None):
    """Inside the block every TurnOverDropout layer of ``model`` applies the masks of
    ``ids`` (or their flips); afterwards the model is the full network again.

    ``ids`` (B,) gives one id per batch row. With ``rows_per_id=n`` the batch holds
    ``n`` test rows and is paired with every id: the first turn-over layer tiles its
    input to ``B * n`` rows (row ``k * n + r`` = test row ``r`` under ``ids[k]``), so
    the layers below it run once instead of ``B`` times.
    """
    layers = turnover_layers(model)
    for layer in layers:
        layer.ids, layer.flip, layer.rows_per_id = ids, flip, rows_per_id
    try:
        yield
    finally:
        for layer in layers:
            layer.ids, layer.flip, layer.rows_per_id = None, False, None


@torch.no_grad()
def influence(model, row_losses, ids, rows_per_id=None):
    """``I(j, t) = L(t; 1 - m_j) - L(t; m_j)`` for every row's (t, j) pair.

    ``row_losses()`` runs ``model`` on a batch and returns one loss per row; ``ids``
    and ``rows_per_id`` are as in ``use_instances``.
    """
    with use_instances(model, ids, flip=True, rows_per_id=rows_per_id):
        without = row_losses()
    with use_instances(model, ids, rows_per_id=rows_per_id):
        with_ = row_losses()
    return without - with_


def mask_adjusted(scores, masks):
    """Influence scores with the part their masks explain removed.

    ``I(j, t) = L(t; 1 - m_j) - L(t; m_j)`` also measures how good the half-network
    ``1 - m_j`` is against ``m_j``, whichever instance owns the mask. Summed over many test
    instances that mask term adds up, while an instance's own effect may not. Modelling
    it as additive over units::

        S_j = b + sum_u w_u (2 m_ju - 1) + e_j

    fitted by least squares over all training instances (masks are random hashes of the
    ids, so independent of what the instances are), the residual ``e_j`` is the instance's
    own influence. ``scores``: (N,); ``masks``: (N, units) bool, every turn-over layer's
    units side by side. Returns ``e`` (float64, (N,)) and the fraction of the scores'
    variance the masks explain.
    """
    signs = masks.to(torch.float64) * 2 - 1
    design = torch.cat([torch.ones(len(signs), 1, dtype=torch.float64), signs], dim=1)  # b, then the w_u
    scores = torch.as_tensor(scores, dtype=torch.float64)
    weights = torch.linalg.lstsq(design, scores[:, None]).solution
    residual = scores - (design @ weights)[:, 0]
    explained = 1 - float(residual.var() / scores.var()) if scores.var() > 0 else 0.0
    return residual, explained
