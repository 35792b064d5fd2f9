"""Tree decoders against brute force: every head assignment of n <= 6 words is enumerated."""

import functools
import itertools

import numpy as np
import pytest

from fairseq_plugins.modules.tree_decoding import chu_liu_edmonds, decode, eisner, find_cycle, greedy, is_tree, tree_score


def is_projective(heads):
    arcs = [(min(d, h), max(d, h)) for d, h in enumerate(heads) if d > 0]
    return not any(a < c < b < e for (a, b), (c, e) in itertools.product(arcs, arcs))


def all_trees(n):
    for words in itertools.product(range(n + 1), repeat=n):
        heads = np.array((-1,) + words)
        if is_tree(heads):
            yield heads


@functools.lru_cache
def tree_table(n, projective):
    """Every (projective) single-root tree of n words, one per row (n + 1 columns, column 0 unused)."""
    return np.stack([heads for heads in all_trees(n) if not projective or is_projective(heads)])


def brute_force(scores, projective):
    table = tree_table(len(scores) - 1, projective)
    words = np.arange(1, len(scores))
    return scores[words, table[:, 1:]].sum(1).max()


@pytest.mark.parametrize("n", range(1, 7))
def test_decoders_equal_brute_force(n):
    rng = np.random.default_rng(n)
    for trial in range(12 if n < 6 else 4):
        # Large root scores tempt an unconstrained search into several root children.
        scores = rng.normal(size=(n + 1, n + 1))
        scores[:, 0] += 2.0 * (trial % 2)
        mst, projective = chu_liu_edmonds(scores), eisner(scores)
        assert is_tree(mst) and is_tree(projective) and is_projective(projective)
        assert tree_score(scores, mst) == pytest.approx(brute_force(scores, projective=False), abs=1e-9)
        assert tree_score(scores, projective) == pytest.approx(brute_force(scores, projective=True), abs=1e-9)


def test_tree_counts_of_the_brute_force():
    # Single-root trees on n labelled words: n^(n-1) (Cayley's formula, rooted at the root's child).
    assert [sum(1 for _ in all_trees(n)) for n in range(1, 6)] == [1, 2, 9, 64, 625]


def test_mst_reaches_a_non_projective_tree_that_eisner_cannot():
    gold = np.array([-1, 3, 4, 0, 3])  # arcs 3->1 and 4->2 cross
    scores = np.full((5, 5), -5.0)
    scores[np.arange(1, 5), gold[1:]] = 5.0
    assert not is_projective(gold)
    assert list(chu_liu_edmonds(scores)) == list(gold)
    assert is_projective(eisner(scores)) and list(eisner(scores)) != list(gold)


def test_greedy_may_not_be_a_tree_while_mst_is():
    scores = np.zeros((4, 4))
    scores[1, 2] = scores[2, 1] = 5.0  # a 2-cycle
    scores[3, 0] = 1.0
    heads = greedy(scores)
    assert list(heads) == [-1, 2, 1, 0] and find_cycle(heads) is not None and not is_tree(heads)
    assert is_tree(decode(scores, "mst"))


def test_is_tree_rejects_bad_head_vectors():
    assert is_tree([-1, 0, 1, 1])
    assert not is_tree([-1, 0, 0, 1])  # two root children
    assert not is_tree([-1, 2, 3, 2])  # no root child, cycle
    assert not is_tree([-1, 1, 0])  # self-loop
    assert not is_tree([-1, 0, 5])  # head out of range


def test_bad_scores_and_decoder_names():
    with pytest.raises(ValueError, match="finite"):
        chu_liu_edmonds(np.array([[0, 0], [np.nan, 0]]))
    with pytest.raises(ValueError, match="mst, eisner, greedy"):
        decode(np.zeros((3, 3)), "viterbi")


def test_decoders_beyond_the_recursion_limit():
    # 1,500 words whose best tree is the chain root -> 1 -> 2 -> ... -> n: each word's arc from the
    # word before it beats every other arc of that word by 0.3 or more. Eisner backtracks through
    # 1,500 nested spans; Chu-Liu-Edmonds (root arcs penalised) first finds the cycle 1 <-> 2, then
    # nests ~1,500 contractions, one more word each. Both were recursive: RecursionError at ~1,000.
    n = 1500
    nodes = np.arange(n + 1)
    scores = -np.abs(nodes[:, None] - nodes) + 0.5 * (nodes < nodes[:, None])
    scores += np.random.default_rng(0).uniform(0, 0.1, size=scores.shape)
    chain = nodes - 1
    for heads in (chu_liu_edmonds(scores), eisner(scores)):
        assert list(heads) == list(chain)
