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

Plain numpy, float64 inside; scores must be finite (except row 0 and the diagonal). Neither
decoder recurses, so sentence length is bounded by memory and time only: at 1,000 words about
0.15 s for ``chu_liu_edmonds`` and 1.3 s for ``eisner`` (one loaded CPU core).
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


def cycles(heads):
    """Each cycle of ``heads`` (root ``heads[0]`` ignored) as a list of its nodes; cycles are disjoint."""
    state = np.zeros(len(heads), dtype=np.int8)  # 0 unseen, 1 on the current path, 2 finished
    state[0] = 2
    for start in range(1, len(heads)):
        path, node = [], start
        while state[node] == 0:
            state[node] = 1
            path.append(node)
            node = heads[node]
        if state[node] == 1:  # walked back into the current path
            yield path[path.index(node):]
        state[path] = 2


def find_cycle(heads):
    """The nodes of one cycle of ``heads`` (root ``heads[0]`` ignored), or None."""
    return next(cycles(heads), None)


def is_tree(heads):
    """True when ``heads`` (``heads[0]`` ignored) is a tree: heads in range, one root child, no cycle."""
    heads = np.asarray(heads)
    words = heads[1:]
    if len(words) == 0 or words.min() < 0 or words.max() >= len(heads) or (words == np.arange(1, len(heads))).any():
        return False
    return int((words == 0).sum()) == 1 and find_cycle(heads) is None


def _maximum_spanning_arborescence(scores):
    """Chu-Liu-Edmonds on ``scores[d, h]`` (-inf where no arc may go; overwritten): best heads, root 0.

    Without recursion, as a sentence of n words can nest n contractions: a cycle is contracted in
    place into its first node, whose row then holds the gain of entering the cycle from each head
    (the cycle's own score is a constant of every entry) and whose column the best arc out of the
    cycle; its other nodes drop out. A new cycle can only pass through the contracted node, so a
    walk from it finds the next one. The contractions are then undone last first.
    """
    size = len(scores)
    heads = scores.argmax(1)
    heads[0] = -1
    alive = np.ones(size, dtype=bool)
    pending = list(cycles(heads))
    in_pending = np.zeros(size, dtype=bool)
    for cycle in pending:
        in_pending[cycle] = True
    contractions = []
    while pending:
        cycle = np.array(pending.pop())
        in_pending[cycle] = False
        alive[cycle] = False
        outside = np.flatnonzero(alive)  # starts with the root
        # An outside word headed by the cycle takes its best head inside the cycle.
        into = scores[np.ix_(outside, cycle)]
        best_head_in_cycle = np.full(size, -1)
        best_head_in_cycle[outside] = cycle[into.argmax(1)]
        # The cycle headed by an outside node h: the cycle word whose arc from h gains most over its
        # cycle arc.
        gain = scores[np.ix_(cycle, outside)] - scores[cycle, heads[cycle]][:, None]
        best_entry = np.full(size, -1)
        best_entry[outside] = cycle[gain.argmax(0)]
        contractions.append((cycle, heads[cycle], best_head_in_cycle, best_entry))
        node = cycle[0]
        scores[cycle] = -np.inf
        scores[:, cycle] = -np.inf
        scores[outside, node] = into.max(1)
        scores[node, outside] = gain.max(0)
        alive[node] = True
        heads[outside[np.isin(heads[outside], cycle)]] = node  # their best head is still the best
        heads[node] = scores[node].argmax()
        path, walker = [node], heads[node]
        while walker != node and walker != 0 and not in_pending[walker]:
            path.append(walker)
            walker = heads[walker]
        if walker == node:
            pending.append(path)
            in_pending[path] = True
    for cycle, cycle_heads, best_head_in_cycle, best_entry in reversed(contractions):
        node = cycle[0]
        entry_head = heads[node]
        headed_by_cycle = (heads == node) & (best_head_in_cycle >= 0)
        heads[headed_by_cycle] = best_head_in_cycle[headed_by_cycle]
        heads[cycle] = cycle_heads  # cycle words keep their cycle heads, but one
        heads[best_entry[entry_head]] = entry_head
    return heads


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
    # Spans i..j of words, stored both as [i, width j - i] (by start) and as [j, n - 1 - width]
    # (by end), so that all spans of one width are one vectorised step over i and the split point,
    # reading both layouts forward.
    # Complete spans: headed by the end j (left-facing), or by the start i (right-facing).
    left_by_start, left_by_end = np.zeros((n, n)), np.zeros((n, n))
    right_by_start, right_by_end = np.zeros((n, n)), np.zeros((n, n))
    # Incomplete spans: arc j -> i with i..j filled between (by end), arc i -> j (by start).
    left_arc_by_end, right_arc_by_start = np.zeros((n, n)), np.zeros((n, n))
    # Best split point k of each span (by start).
    arc_split, left_split, right_split = (np.zeros((n, n), dtype=np.int64) for _ in range(3))
    candidates = np.empty((n + 1) ** 2 // 4)  # one width's (span, split point) sums, reused
    for width in range(1, n):
        starts = np.arange(n - width)
        ends = slice(width, n)
        sums = candidates[:(n - width) * width].reshape(n - width, width)
        # complete(i, k, right) + complete(k + 1, j, left), k = i..j-1
        np.add(right_by_start[:n - width, :width], left_by_end[ends, n - width:], out=sums)
        k = sums.argmax(1)
        best = sums[starts, k]
        left_arc_by_end[ends, n - 1 - width] = best + np.diagonal(arc, width)  # + arc[i, j]
        right_arc_by_start[:n - width, width] = best + np.diagonal(arc, -width)  # + arc[j, i]
        arc_split[:n - width, width] = starts + k
        # complete(i, k, left) + incomplete(k, j, left), k = i..j-1
        np.add(left_by_start[:n - width, :width], left_arc_by_end[ends, n - 1 - width:n - 1], out=sums)
        k = sums.argmax(1)
        left_by_start[:n - width, width] = left_by_end[ends, n - 1 - width] = sums[starts, k]
        left_split[:n - width, width] = starts + k
        # incomplete(i, k, right) + complete(k, j, right), k = i+1..j
        np.add(right_arc_by_start[:n - width, 1:width + 1], right_by_end[ends, n - width:], out=sums)
        k = sums.argmax(1)
        right_by_start[:n - width, width] = right_by_end[ends, n - 1 - width] = sums[starts, k]
        right_split[:n - width, width] = starts + 1 + k
    rooted = scores[1:, 0] + left_by_start[0] + right_by_end[n - 1]
    root_child = int(rooted.argmax())
    heads = np.full(n + 1, -1)
    heads[root_child + 1] = 0
    # Back through the splits with a stack of (complete?, i, j, headed by the start?), not recursion:
    # the spans of a chain of n words nest n deep.
    spans = [(True, 0, root_child, False), (True, root_child, n - 1, True)]
    while spans:
        complete, i, j, rightward = spans.pop()
        if not complete:
            heads[(j if rightward else i) + 1] = (i if rightward else j) + 1
            k = arc_split[i, j - i]
            spans += [(True, i, k, True), (True, k + 1, j, False)]
        elif i < j and rightward:
            k = right_split[i, j - i]
            spans += [(False, i, k, True), (True, k, j, True)]
        elif i < j:
            k = left_split[i, j - i]
            spans += [(True, i, k, False), (False, k, j, False)]
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
