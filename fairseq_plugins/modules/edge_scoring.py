"""Edge vectors and instance-based arc and label scores (Ouchi et al., TACL 2021).

"Instance-Based Neural Dependency Parsing": a candidate edge from head ``h`` to dependent ``d``
is one vector built from the two words' encoder states ``x``::

    dep_d = MLP_dep(x_d),   head_h = MLP_head(x_h),   e(d, h) = W (dep_d * head_h)

and is scored by its similarity to the gold edges ``E`` of training sentences (the instance
set; ``E_r`` those labelled ``r``)::

    arc(d, h)      = 1/|E|   sum_{e' in E}   sim(e(d, h), e')
    label_r(d, h)  = 1/|E_r| sum_{e' in E_r} sim(e(d, h), e')
    sim(a, b) = a . b  (dot)      or      s * (a / |a|) . (b / |b|)  (scaled cosine, s learned or fixed)

Both similarities are linear in the training edge (after normalisation for cosine), so the sum
over ALL training edges is one product with their (per-label) sum, ``InstanceMemory.label_sums``:
``arc(d, h) = s * n(e(d, h)) . sum_r label_sums[r] / |E|``. And each training edge's term,
``s * sim(e(d, h), e'_j) / |E|``, is its contribution: the contributions of the whole training
set add up to the arc score, and the largest ones explain it.

The arc score is the mean, not the sum, of the similarities: the two differ by the constant
``|E|`` and rank heads and trees alike, but the mean keeps the scale of the softmax the same
whether the instance set is K sampled sentences (training) or the whole training set (test).
A label with no edge in the instance set cannot be predicted (score -inf).

``label_masses`` is the other label rule, the one of the authors' instance-based NER code (Ouchi
et al., ACL 2020): a label's probability is the softmax mass of its training edges,
``P(r | d, h) = sum_{e' in E_r} softmax_{e' in E}(sim(e(d, h), e'))``. Unlike the mean it carries
the labels' training frequencies (a label with more edges has more mass), as a weight-based
label layer's bias does.

``BiaffineArcScorer`` is the weight-based baseline on the same ``dep``/``head`` vectors:
``arc(d, h) = dep_d^T U head_h + u . head_h`` (Dozat & Manning's biaffine form).
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from fairseq_plugins.modules.instance_memory import SIMILARITIES


class DepHeadProjections(nn.Module):
    """``dep_d = MLP_dep(x_d)`` and ``head_h = MLP_head(x_h)`` (linear, leaky ReLU, dropout)."""

    def __init__(self, input_dim, hidden_dim, dropout):
        super().__init__()

        def projection():
            return nn.Sequential(nn.Linear(input_dim, hidden_dim), nn.LeakyReLU(0.1), nn.Dropout(dropout))

        self.dep, self.head = projection(), projection()

    def forward(self, states):
        """``(dep (B, T, k), head (B, T, k))`` of encoder states (B, T, input_dim)."""
        return self.dep(states), self.head(states)


class EdgeVectors(DepHeadProjections):
    """The projections and ``e(d, h) = W (dep_d * head_h)``."""

    def __init__(self, input_dim, hidden_dim, edge_dim, dropout):
        super().__init__(input_dim, hidden_dim, dropout)
        self.edge = nn.Linear(hidden_dim, edge_dim, bias=False)

    def all_edges(self, dep, head):
        """``e[b, d, h]`` for every dependent/head pair: (B, T, T, edge_dim)."""
        return self.edge(dep.unsqueeze(2) * head.unsqueeze(1))

    def edges_to(self, dep, head, heads):
        """``e[b, d] = e(d, heads[b, d])``: (B, T, edge_dim); ``heads`` (B, T) valid indices."""
        chosen = head.gather(1, heads.unsqueeze(-1).expand(-1, -1, head.size(-1)))
        return self.edge(dep * chosen)


class BiaffineArcScorer(nn.Module):
    """Weight-based arc scores ``dep_d^T U head_h + u . head_h``: (B, T, T) indexed [b, d, h]."""

    def __init__(self, hidden_dim):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(hidden_dim, hidden_dim))
        self.head_bias = nn.Linear(hidden_dim, 1, bias=False)

    def forward(self, dep, head):
        return dep @ self.weight @ head.transpose(1, 2) + self.head_bias(head).transpose(1, 2)


class InstanceEdgeScorer(nn.Module):
    """Arc and label scores of edge vectors against an instance memory of training edges.

    ``memory``: a ``modules.instance_memory.InstanceMemory`` built with the same ``similarity``,
    holding training gold edges (vectors, labels).
    """

    def __init__(self, similarity, scale=10.0, learn_scale=True):
        super().__init__()
        if similarity not in SIMILARITIES:
            raise ValueError(f"similarity must be one of {', '.join(SIMILARITIES)}, got {similarity!r}")
        if scale <= 0:
            raise ValueError(f"the cosine scale must be positive, got {scale}")
        self.similarity = similarity
        # Unused by dot; kept for every similarity so that checkpoints share one layout.
        self.log_scale = nn.Parameter(torch.tensor(math.log(scale)), requires_grad=learn_scale and similarity == "cosine")

    def scale(self):
        return self.log_scale.exp() if self.similarity == "cosine" else self.log_scale.new_ones(())

    def normalized(self, vectors):
        return F.normalize(vectors, dim=-1) if self.similarity == "cosine" else vectors

    def arc_scores(self, edges, memory):
        """Mean similarity of each edge (..., e) to all memory edges: (...)."""
        total = memory.label_sums().sum(0).to(edges.dtype)  # (e,)
        return self.scale() * (self.normalized(edges) @ total) / len(memory)

    def label_scores(self, edges, memory):
        """Mean similarity of each edge (..., e) to each label's memory edges: (..., L)."""
        sums = memory.label_sums().to(edges.dtype)  # (L, e)
        counts = torch.bincount(memory.labels, minlength=memory.num_labels).to(edges.dtype)
        scores = self.scale() * (self.normalized(edges) @ sums.t()) / counts.clamp(min=1)
        return scores.masked_fill(counts == 0, float("-inf"))

    def label_masses(self, edges, memory):
        """``log P(r | edge)``, each label's softmax mass over all memory edges, of edges (..., e): (..., L);
        differentiable in training (a few sampled sentences), streamed otherwise (the whole training set)."""
        flat = edges.reshape(-1, edges.size(-1))
        log_probs = memory.label_log_probs(flat, scale=self.scale(), differentiable=self.training)
        return log_probs.reshape(*edges.shape[:-1], memory.num_labels)

    def contributions(self, edges, memory):
        """Each memory edge's term of the arc scores of ``edges`` (Q, e): (Q, N); rows sum to the scores."""
        return self.scale() * memory.similarities(edges) / len(memory)

    def explained_scores(self, edges, memory, chunk_size=4096):
        """(Q,) the sum of every memory edge's contribution to each edge's arc score (= the arc score),
        streamed over ``chunk_size`` memory edges at a time: memory O(Q x chunk_size), not O(Q x N)."""
        return self.scale() * memory.total_similarities(edges, chunk_size) / len(memory)

    def top_contributions(self, edges, memory, k, chunk_size=4096):
        """The ``k`` largest contributions to each edge's arc score: ``(values (Q, k), memory indices (Q, k))``."""
        similarities, indices = memory.top_k(edges, min(k, len(memory)), chunk_size)
        return self.scale() * similarities / len(memory), indices
