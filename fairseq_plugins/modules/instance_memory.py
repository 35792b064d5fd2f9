"""Instance-based classification: a label is the softmax mass of the training instances carrying it.

Ouchi et al., "Instance-Based Learning of Span Representations" (ACL 2020). A query ``q`` (a span,
an edge, ...) is compared with every stored training instance ``m_j`` (label ``y_j``)::

    alpha_j = softmax_j(scale * sim(q, m_j))          sim: q . m_j  or  cos(q, m_j)
    P(y | q) = sum_{j: y_j = y} alpha_j
    log P(y | q) = logsumexp_{j: y_j = y}(scale * sim_j) - logsumexp_j(scale * sim_j)

``label_log_probs`` below is that formula for a score matrix already in memory (differentiable:
training compares a batch with the instances of a few sampled sentences). ``InstanceMemory``
holds a whole training set and evaluates the same formula exactly in chunks of memory rows,
streaming one logsumexp per label, so that memory use is O(queries x chunk) whatever the
number of instances; ``top_k`` streams the k most similar instances the same way (the
explanation of a prediction), and ``total_similarities`` each query's summed similarity.

Plain PyTorch: the NER and dependency-parsing heads both build on this module.
"""

import torch

SIMILARITIES = ("dot", "cosine")
SCORE_ELEMENTS = 2**22  # query x instance scores held at once when streaming over a memory


def label_log_probs(scores, labels, num_labels):
    """``log P(y | q)`` (Q, num_labels) from ``scores`` (Q, N) (already scaled) and ``labels`` (N,).

    Instances sorted by label save a copy of ``scores`` (and its gradient). A label no instance
    carries gets ``-inf``. Exact and stable: each label's logsumexp is taken
    over that label's own columns (a shift by the global maximum would underflow to ``log 0``
    for labels whose instances all score far below the best one).
    """
    counts = torch.bincount(labels, minlength=num_labels).tolist()
    if labels.numel() > 1 and (labels[1:] < labels[:-1]).any():  # not yet grouped by label: group the columns
        scores = scores[:, labels.argsort(stable=True)]
    return normalize(grouped_logsumexp(scores, counts))


def grouped_logsumexp(scores, counts):
    """(Q, len(counts)): logsumexp of consecutive column groups of ``scores`` of sizes ``counts``
    (``-inf`` for an empty group)."""
    groups = [part.logsumexp(1) if part.size(1) else scores.new_full((scores.size(0),), float("-inf"))
              for part in scores.split(counts, dim=1)]
    return torch.stack(groups, dim=1)


def normalize(label_scores):
    """Log-probabilities from per-label logsumexps: subtract the logsumexp over every instance."""
    return label_scores - label_scores.logsumexp(-1, keepdim=True)


class InstanceMemory:
    """Training instances (vectors, labels, ids) and exact, chunked scoring of queries against all of them.

    - ``similarity``: ``"dot"`` or ``"cosine"`` (both queries and stored vectors are L2-normalized;
      stored vectors are normalized once, when added).
    - ``ids``: any per-instance key, (N,) or (N, k) long (e.g. a training sentence id, or
      ``(sentence, start, end)`` for a span): returned with explanations, never used in scoring.

    Instances are kept grouped by label (stable: in the order added within a label), so that each
    label's logsumexp is one reduction over a contiguous block; ``vectors``, ``labels``, ``ids``
    and the indices ``top_k`` returns all follow that order. Stored tensors stay on the device
    they were added on; queries must be on the same one.
    """

    def __init__(self, num_labels, similarity="dot"):
        if similarity not in SIMILARITIES:
            raise ValueError(f"similarity must be one of {', '.join(SIMILARITIES)} (got {similarity!r})")
        self.num_labels = num_labels
        self.similarity = similarity
        self.clear()

    def clear(self):
        self._parts = []  # (vectors, labels, ids) as added; concatenated on first use
        self._joined = None

    def __len__(self):
        return sum(part[1].numel() for part in self._parts)

    def add(self, vectors, labels, ids):
        if vectors.dim() != 2 or labels.shape != vectors.shape[:1] or ids.size(0) != vectors.size(0):
            raise ValueError(f"add: need vectors (N, d), labels (N,), ids (N, ...); got {tuple(vectors.shape)}, "
                             f"{tuple(labels.shape)}, {tuple(ids.shape)}")
        if labels.numel() and (labels.min() < 0 or labels.max() >= self.num_labels):
            raise ValueError(f"add: labels must be in [0, {self.num_labels}), got {labels.min()}..{labels.max()}")
        vectors = vectors.detach()
        if self.similarity == "cosine":
            vectors = torch.nn.functional.normalize(vectors, dim=-1)
        self._parts.append((vectors, labels.detach().long(), ids.detach().long()))
        self._joined = None

    def _tensors(self):
        if self._joined is None:
            if not self._parts:
                raise ValueError("the instance memory is empty: add training instances first")
            vectors, labels, ids = (torch.cat(column) for column in zip(*self._parts))
            order = labels.argsort(stable=True)
            self._joined = vectors[order], labels[order], ids[order]
            self._counts = torch.bincount(labels, minlength=self.num_labels).tolist()
            self._parts = [self._joined]
        return self._joined

    @property
    def vectors(self):
        return self._tensors()[0]

    @property
    def labels(self):
        return self._tensors()[1]

    @property
    def ids(self):
        return self._tensors()[2]

    def _queries(self, queries):
        return torch.nn.functional.normalize(queries, dim=-1) if self.similarity == "cosine" else queries

    def similarities(self, queries):
        """Brute force: (Q, N) similarities to every stored instance, in the queries' dtype (the memory is
        encoded without gradient and may hold another precision than the differentiable queries)."""
        return self._queries(queries) @ self.vectors.t().to(queries.dtype)

    def _chunks(self, queries, chunk_size, vectors=None, offset=0):
        """``(first row, scores (Q, rows))`` over ``vectors`` (default: the whole memory), ``chunk_size`` rows at a time."""
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1 (got {chunk_size})")
        vectors = self.vectors if vectors is None else vectors
        for start in range(0, vectors.size(0), chunk_size):
            yield offset + start, queries @ vectors[start:start + chunk_size].t()

    def label_log_probs(self, queries, scale=1.0, differentiable=False, chunk_size=None):
        """Exact ``log P(y | q)`` (Q, num_labels) over every stored instance, two ways:

        - ``differentiable=True`` (training, where the memory holds the instances of a few sampled
          sentences): from the whole (Q, N) score matrix, with gradients to ``queries`` and ``scale``;
        - otherwise (scoring against a whole training set): without gradients, streamed ``chunk_size``
          memory rows at a time (default: ``SCORE_ELEMENTS`` scores held at once), each label's
          logsumexp accumulated over its block of instances.
        """
        if differentiable:
            return label_log_probs(scale * self.similarities(queries), self.labels, self.num_labels)
        if chunk_size is None:
            chunk_size = max(1, SCORE_ELEMENTS // max(1, queries.size(0)))
        with torch.no_grad():
            queries = self._queries(queries)
            columns = []
            for block in self.vectors.split(self._counts):
                total = queries.new_full((queries.size(0),), float("-inf"))
                for _, scores in self._chunks(queries, chunk_size, block):
                    total = torch.logaddexp(total, (scale * scores).logsumexp(1))
                columns.append(total)
            return normalize(torch.stack(columns, dim=1))

    @torch.no_grad()
    def total_similarities(self, queries, chunk_size=4096):
        """(Q,) each query's similarities to every stored instance, summed ``chunk_size`` rows at a time (the
        (Q, N) matrix is never built)."""
        total = queries.new_zeros(queries.size(0))
        for _, scores in self._chunks(self._queries(queries), chunk_size):
            total += scores.sum(1)
        return total

    @torch.no_grad()
    def top_k(self, queries, k, chunk_size=4096):
        """The ``k`` most similar stored instances of each query, exactly: (scores (Q, k), indices (Q, k)),
        best first; ``k`` is capped at the memory size."""
        k = min(k, len(self))
        best_scores = queries.new_empty((queries.size(0), 0))
        best_indices = torch.empty((queries.size(0), 0), dtype=torch.long, device=queries.device)
        for start, scores in self._chunks(self._queries(queries), chunk_size):
            chunk_scores, chunk_indices = scores.topk(min(k, scores.size(1)), dim=1)
            merged_scores = torch.cat([best_scores, chunk_scores], 1)
            merged_indices = torch.cat([best_indices, chunk_indices + start], 1)
            best_scores, order = merged_scores.topk(min(k, merged_scores.size(1)), dim=1)
            best_indices = merged_indices.gather(1, order)
        return best_scores, best_indices

    def label_sums(self):
        """Per-label sum of the stored (for cosine: normalized) vectors: (num_labels, d).

        With dot similarity, ``q . label_sums()[y]`` is the total similarity of ``q`` to the
        instances of label ``y`` in one product (the parsing paper's test-time shortcut)."""
        vectors, labels = self.vectors, self.labels
        return vectors.new_zeros((self.num_labels, vectors.size(1))).index_add_(0, labels, vectors)
