"""Dependency trees from arc scores: Chu-Liu-Edmonds (one root), Eisner (projective), greedy.

A sentence of ``n`` words has nodes ``0..n``; node 0 is the artificial root. ``scores[d, h]``
(shape ``(n + 1, n + 1)``) is the score of the arc from head ``h`` to dependent ``d``; row 0 and
the diagonal are ignored. A decoder returns ``heads`` (``n + 1`` integers, ``heads[0] = -1``)
maximising ``sum_{d=1..n} scores[d, heads[d]]`` over its search space:

- ``chu_liu_edmonds``: every tree (one root child, no cycle, each word one head), projective or
  not. The root constraint is exact: every root arc is lowered by a constant ``M`` larger than the
  spread of any two trees' scores, ``M = 1 + sum_d (max_h scores[d, h] - min_h scores[d, h])``,
  so a tree with ``k`` root children pays ``k M`` and the best penalised tree has exactly one
  root child and, among those, the highest score.
- ``eisner``: projective trees with one root child (no crossing arcs), by Eisner's O(n^3)
  dynamic program over the words, closed by the best root child ``r``:
  ``scores[r, 0] + best left half headed by r + best right half headed by r``.
  Exact for projective data only: a treebank with non-projective gold trees (the Turkish web
  treebank, ~7% of its sentences) needs ``chu_liu_edmonds`` to reach every gold tree.
- ``greedy``: ``heads[d] = argmax_h scores[d, h]`` per word, as Ouchi et al. (2021) decode; the
  output need not be a tree (several root children, cycles).

Plain numpy, float64 inside; scores must be finite (except row 0 and the diagonal).
"""

import numpy as np

DECODERS = ("mst", "eisner", "greedy")


def _prepared(scores):
    scores = np.array(scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[0] != scores.shape[1] or scores.shape[0] < 2:
        raise ValueError(f"scores must be (n + 1, n + 1) with n >= 1, got shape {scores.shape}")
    scores[0] = -np.inf  # the root has no head
    np.fill_diagonal(scores, -np.inf)  # nor does any word head itself
    arcs = scores[1:][~np.eye(len(scores), dtype=bool)[1:]]
    if not np.isfinite(arcs).all():
        raise ValueError("scores must be finite (row 0 and the diagonal are ignored)")
    return scores


def find_cycle(heads):
    """The nodes of one cycle of ``heads`` (root ``heads[0]`` ignored), or None."""
    state = np.zeros(len(heads), dtype=np.int8)  # 0 unseen, 1 on the current path, 2 finished
    state[0] = 2
    for start in range(1, len(heads)):
        path, node = [], start
        while state[node] == 0:
            state[node] = 1
            path.append(node)
            node = heads[node]
        if state[node] == 1:  # walked back into the current path
            return path[path.index(node):]
        state[path] = 2
    return None


def is_tree(heads):
    """True when ``heads`` (``heads[0]`` ignored) is a tree: heads in range, one root child, no cycle."""
    heads = np.asarray(heads)
    words = heads[1:]
    if len(words) == 0 or words.min() < 0 or words.max() >= len(heads) or (words == np.arange(1, len(heads))).any():
        return False
    return int((words == 0).sum()) == 1 and find_cycle(heads) is None


def _maximum_spanning_arborescence(scores):
    """Chu-Liu-Edmonds on ``scores[d, h]`` (-inf where no arc may go): best heads, root 0."""
    heads = scores.argmax(1)
    heads[0] = -1
    cycle = find_cycle(heads)
    if cycle is None:
        return heads
    cycle = np.array(cycle)
    in_cycle = np.zeros(len(scores), dtype=bool)
    in_cycle[cycle] = True
    outside = np.flatnonzero(~in_cycle)  # starts with the root
    contracted = len(outside)  # index of the cycle's node in the smaller graph
    smaller = np.full((contracted + 1, contracted + 1), -np.inf)
    smaller[:contracted, :contracted] = scores[np.ix_(outside, outside)]
    # An outside word headed by the cycle takes its best head inside the cycle.
    into = scores[np.ix_(outside, cycle)]
    best_head_in_cycle = into.argmax(1)
    smaller[:contracted, contracted] = into[np.arange(contracted), best_head_in_cycle]
    # The cycle headed by an outside node h: the cycle word d whose arc from h gains most over its
    # cycle arc (the cycle's own score is a constant of every such choice).
    gain = scores[np.ix_(cycle, outside)] - scores[cycle, heads[cycle]][:, None]
    best_entry = gain.argmax(0)
    smaller[contracted, :contracted] = gain[best_entry, np.arange(contracted)]
    smaller[0] = -np.inf
    smaller_heads = _maximum_spanning_arborescence(smaller)
    result = heads.copy()  # cycle words keep their cycle heads, but one
    for position, node in enumerate(outside[1:], start=1):
        head = smaller_heads[position]
        result[node] = cycle[best_head_in_cycle[position]] if head == contracted else outside[head]
    entry_head = smaller_heads[contracted]
    result[cycle[best_entry[entry_head]]] = outside[entry_head]
    return result


def chu_liu_edmonds(scores):
    """Best tree with exactly one root child (projective or not); see the module docstring."""
    scores = _prepared(scores)
    words = scores[1:]
    finite = np.where(np.isfinite(words), words, np.nan)
    penalty = 1.0 + float(np.nansum(np.nanmax(finite, 1) - np.nanmin(finite, 1)))
    scores[1:, 0] -= penalty
    return _maximum_spanning_arborescence(scores)


def eisner(scores):
    """Best projective tree with exactly one root child; see the module docstring."""
    scores = _prepared(scores)
    n = len(scores) - 1
    arc = scores[1:, 1:]  # arc[d, h] over words 0..n-1 (node k + 1)
    # complete[i, j, 0]: span i..j headed by j (left-facing); [.., 1]: headed by i (right-facing).
    # incomplete[i, j, 0]: arc j -> i with i..j filled between; [.., 1]: arc i -> j.
    complete = np.zeros((n, n, 2))
    incomplete = np.full((n, n, 2), -np.inf)
    complete_split = np.zeros((n, n, 2), dtype=np.int64)
    incomplete_split = np.zeros((n, n, 2), dtype=np.int64)
    for width in range(1, n):
        for i in range(n - width):
            j = i + width
            joined = complete[i, i:j, 1] + complete[i + 1:j + 1, j, 0]  # split k = i..j-1
            k = int(joined.argmax())
            incomplete[i, j, 0] = joined[k] + arc[i, j]
            incomplete[i, j, 1] = joined[k] + arc[j, i]
            incomplete_split[i, j] = i + k
            left = complete[i, i:j, 0] + incomplete[i:j, j, 0]  # k = i..j-1
            k = int(left.argmax())
            complete[i, j, 0], complete_split[i, j, 0] = left[k], i + k
            right = incomplete[i, i + 1:j + 1, 1] + complete[i + 1:j + 1, j, 1]  # k = i+1..j
            k = int(right.argmax())
            complete[i, j, 1], complete_split[i, j, 1] = right[k], i + 1 + k
    heads = np.full(n + 1, -1)

    def fill_complete(i, j, facing):
        if i == j:
            return
        k = complete_split[i, j, facing]
        if facing == 0:
            fill_complete(i, k, 0)
            fill_incomplete(k, j, 0)
        else:
            fill_incomplete(i, k, 1)
            fill_complete(k, j, 1)

    def fill_incomplete(i, j, facing):
        if facing == 0:
            heads[i + 1] = j + 1
        else:
            heads[j + 1] = i + 1
        k = incomplete_split[i, j, facing]
        fill_complete(i, k, 1)
        fill_complete(k + 1, j, 0)

    rooted = scores[1:, 0] + complete[0, :, 0] + complete[:, n - 1, 1]
    root_child = int(rooted.argmax())
    heads[root_child + 1] = 0
    fill_complete(0, root_child, 0)
    fill_complete(root_child, n - 1, 1)
    return heads


def greedy(scores):
    """Best head of each word on its own (not necessarily a tree)."""
    heads = _prepared(scores).argmax(1)
    heads[0] = -1
    return heads


def tree_score(scores, heads):
    """``sum_{d >= 1} scores[d, heads[d]]``."""
    scores = np.asarray(scores, dtype=np.float64)
    return float(scores[np.arange(1, len(heads)), np.asarray(heads)[1:]].sum())


def decode(scores, method):
    """Heads of one sentence by ``method``: ``mst`` (Chu-Liu-Edmonds), ``eisner`` or ``greedy``."""
    if method == "mst":
        return chu_liu_edmonds(scores)
    if method == "eisner":
        return eisner(scores)
    if method == "greedy":
        return greedy(scores)
    raise ValueError(f"unknown decoder {method!r}; one of {', '.join(DECODERS)}")
