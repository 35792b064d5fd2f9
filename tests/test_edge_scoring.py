"""Edge vectors and instance-based arc/label scores: the sum shortcut equals the explicit per-edge sum."""

import pytest
import torch

from fairseq_plugins.modules.edge_scoring import BiaffineArcScorer, EdgeVectors, InstanceEdgeScorer
from fairseq_plugins.modules.instance_memory import InstanceMemory

LABELS = 5


def memory_of(similarity, count=300, dim=8, seed=0):
    generator = torch.Generator().manual_seed(seed)
    vectors = torch.randn(count, dim, generator=generator, dtype=torch.float64)
    labels = torch.randint(0, LABELS - 1, (count,), generator=generator)  # label LABELS - 1 never occurs
    memory = InstanceMemory(LABELS, similarity)
    memory.add(vectors[:100], labels[:100], torch.arange(100))
    memory.add(vectors[100:], labels[100:], torch.arange(100, count))
    return memory, vectors, labels


def explicit_similarity(query, edge, similarity, scale):
    if similarity == "dot":
        return float(query @ edge)
    return scale * float(query @ edge / (query.norm() * edge.norm()))


@pytest.mark.parametrize("similarity", ["dot", "cosine"])
def test_scores_against_summed_training_edges_equal_the_explicit_sums(similarity):
    memory, vectors, labels = memory_of(similarity)
    scorer = InstanceEdgeScorer(similarity, scale=7.0).double()
    queries = torch.randn(2, 3, 4, 8, dtype=torch.float64)  # (B, T, T, e) candidate edges
    arcs = scorer.arc_scores(queries, memory)
    label_scores = scorer.label_scores(queries, memory)
    assert arcs.shape == (2, 3, 4) and label_scores.shape == (2, 3, 4, LABELS)
    for index in [(0, 0, 0), (1, 2, 3), (0, 1, 2)]:
        query = queries[index]
        per_edge = torch.tensor([explicit_similarity(query, edge, similarity, 7.0) for edge in vectors], dtype=torch.float64)
        assert arcs[index].item() == pytest.approx(per_edge.sum().item() / len(vectors), rel=1e-6, abs=1e-9)
        for label in range(LABELS - 1):
            mean = per_edge[labels == label].mean().item()
            assert label_scores[index][label].item() == pytest.approx(mean, rel=1e-6, abs=1e-9)
        assert label_scores[index][LABELS - 1] == float("-inf")  # no training edge carries it


def test_label_and_arc_scores_of_a_hand_computed_case():
    """The paper's label score (METHODS.md section 9): the mean similarity of the edge to each label's
    training edges; arc: the mean over all of them. Training edges a = (1, 0), b = (3, 0) labelled 0 and
    c = (0, 2) labelled 1; the edge q = (1, 1).

    dot:    label 0: (q.a + q.b) / 2 = (1 + 3) / 2 = 2;  label 1: q.c = 2;  arc: (1 + 3 + 2) / 3 = 2
    cosine, s = 4: cos(q, a) = cos(q, b) = cos(q, c) = 1/sqrt(2), so every score is 4 / sqrt(2);
    for q' = (2, 0): cos = 1, 1, 0: label 0: 4, label 1: 0, arc: 4 * 2/3."""
    memory_vectors = torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 1])
    for similarity, query, label_scores, arc in [
        ("dot", [1.0, 1.0], [2.0, 2.0], 2.0),
        ("dot", [2.0, 0.0], [4.0, 0.0], 8.0 / 3),
        ("cosine", [1.0, 1.0], [4 / 2 ** 0.5, 4 / 2 ** 0.5], 4 / 2 ** 0.5),
        ("cosine", [2.0, 0.0], [4.0, 0.0], 8.0 / 3),
    ]:
        memory = InstanceMemory(2, similarity)
        memory.add(memory_vectors, labels, torch.arange(3))
        scorer = InstanceEdgeScorer(similarity, scale=4.0).double()
        edge = torch.tensor([query], dtype=torch.float64)
        assert scorer.label_scores(edge, memory)[0].tolist() == pytest.approx(label_scores)
        assert scorer.arc_scores(edge, memory)[0].item() == pytest.approx(arc)


@pytest.mark.parametrize("similarity", ["dot", "cosine"])
def test_contributions_sum_to_the_arc_score_and_top_ones_lead(similarity):
    memory, _, _ = memory_of(similarity, seed=1)
    scorer = InstanceEdgeScorer(similarity, scale=3.0).double()
    queries = torch.randn(6, 8, dtype=torch.float64)
    contributions = scorer.contributions(queries, memory)
    assert contributions.shape == (6, 300)
    assert torch.allclose(contributions.sum(1), scorer.arc_scores(queries, memory), atol=1e-10)
    top, indices = scorer.top_contributions(queries, memory, 4)
    expected, expected_indices = contributions.topk(4, dim=1)
    assert torch.allclose(top, expected) and torch.equal(indices, expected_indices)


def test_cosine_scale_learned_or_fixed_and_dot_has_none():
    memory, _, _ = memory_of("cosine", seed=2)
    queries = torch.randn(5, 8, dtype=torch.float64, requires_grad=True)
    learned = InstanceEdgeScorer("cosine", scale=10.0).double()
    learned.arc_scores(queries, memory).sum().backward()
    assert learned.log_scale.grad is not None and queries.grad is not None
    fixed = InstanceEdgeScorer("cosine", scale=10.0, learn_scale=False)
    assert not fixed.log_scale.requires_grad and fixed.scale().item() == pytest.approx(10.0)
    dot = InstanceEdgeScorer("dot", scale=10.0)
    assert dot.scale().item() == 1.0 and not dot.log_scale.requires_grad
    with pytest.raises(ValueError, match="dot, cosine"):
        InstanceEdgeScorer("euclid")


def test_edge_vectors_are_w_of_the_elementwise_product():
    torch.manual_seed(0)
    edges = EdgeVectors(input_dim=6, hidden_dim=5, edge_dim=4, dropout=0.0)
    states = torch.randn(2, 3, 6)
    dep, head = edges(states)
    table = edges.all_edges(dep, head)
    assert table.shape == (2, 3, 3, 4)
    assert torch.allclose(table[1, 2, 0], edges.edge.weight @ (dep[1, 2] * head[1, 0]), atol=1e-6)
    heads = torch.tensor([[0, 0, 1], [2, 0, 0]])
    chosen = edges.edges_to(dep, head, heads)
    assert torch.allclose(chosen[0, 2], table[0, 2, 1], atol=1e-6) and torch.allclose(chosen[1, 0], table[1, 0, 2], atol=1e-6)


def test_biaffine_arc_scores():
    torch.manual_seed(1)
    scorer = BiaffineArcScorer(5)
    torch.nn.init.normal_(scorer.weight)
    dep, head = torch.randn(2, 4, 5), torch.randn(2, 4, 5)
    scores = scorer(dep, head)
    expected = dep[1, 3] @ scorer.weight @ head[1, 2] + scorer.head_bias.weight[0] @ head[1, 2]
    assert scores.shape == (2, 4, 4) and torch.allclose(scores[1, 3, 2], expected, atol=1e-5)



@pytest.mark.parametrize("similarity", ["dot", "cosine"])
def test_label_masses_are_each_labels_softmax_mass_with_and_without_gradients(similarity):
    memory, vectors, labels = memory_of(similarity, seed=3)
    scorer = InstanceEdgeScorer(similarity, scale=2.0).double()
    queries = torch.randn(2, 3, 8, dtype=torch.float64)
    trained = scorer.label_masses(queries, memory)  # gradients on: the full score matrix
    with torch.no_grad():
        streamed = scorer.label_masses(queries, memory)  # the memory's chunked exact scores
    assert trained.shape == streamed.shape == (2, 3, LABELS)
    query = queries[1, 2]
    weights = torch.tensor([explicit_similarity(query, edge, similarity, 2.0) for edge in vectors]).softmax(0)
    for label in range(LABELS - 1):
        mass = weights[labels == label].sum().log().item()
        assert trained[1, 2, label].item() == pytest.approx(mass, rel=1e-6)
        assert streamed[1, 2, label].item() == pytest.approx(mass, rel=1e-6)
    assert trained[1, 2, LABELS - 1] == float("-inf")
