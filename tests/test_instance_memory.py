"""InstanceMemory and label_log_probs: the chunked, streaming scores equal the brute-force formula."""

import pytest
import torch

from fairseq_plugins.modules.instance_memory import InstanceMemory, label_log_probs


def brute_force_log_probs(scores, labels, num_labels):
    """``log sum_{j: y_j = y} softmax_j(scores)`` straight from the definition."""
    alpha = scores.double().softmax(-1)
    probs = torch.stack([alpha[:, labels == y].sum(-1) for y in range(num_labels)], -1)
    return probs.log()


def filled_memory(similarity, count=257, dim=8, num_labels=5, seed=0):
    generator = torch.Generator().manual_seed(seed)
    memory = InstanceMemory(num_labels, similarity)
    labels = torch.randint(0, num_labels - 1, (count,), generator=generator)  # the last label never occurs
    # Added in two parts: the memory is their concatenation.
    vectors = 3 * torch.randn(count, dim, generator=generator)
    memory.add(vectors[:100], labels[:100], torch.arange(100))
    memory.add(vectors[100:], labels[100:], torch.arange(100, count))
    return memory, vectors, labels


@pytest.mark.parametrize("similarity", ["dot", "cosine"])
def test_chunked_label_log_probs_equal_brute_force(similarity):
    memory, vectors, labels = filled_memory(similarity)
    order = labels.argsort(stable=True)  # the memory keeps instances grouped by label
    vectors, labels = vectors[order], labels[order]
    assert torch.equal(memory.labels, labels)
    queries = 3 * torch.randn(11, 8, generator=torch.Generator().manual_seed(1))
    scores = memory.similarities(queries)
    if similarity == "cosine":
        expected_scores = torch.nn.functional.normalize(queries, dim=-1) @ torch.nn.functional.normalize(vectors, dim=-1).t()
    else:
        expected_scores = queries @ vectors.t()
    torch.testing.assert_close(scores, expected_scores)
    expected = brute_force_log_probs(4.0 * scores, labels, 5)
    for chunk_size in (1, 7, 100, 10_000):
        got = memory.label_log_probs(queries, chunk_size=chunk_size, scale=4.0)
        assert torch.isneginf(got[:, 4]).all()  # a label without instances has probability 0
        torch.testing.assert_close(got[:, :4].double(), expected[:, :4], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(got.exp().sum(-1), torch.ones(11))  # probabilities sum to 1


def test_far_apart_scores_do_not_underflow():
    """A label whose instances all score 1000 below the best still gets its (tiny) log-probability."""
    scores = torch.tensor([[0.0, -1000.0, -1001.0]])
    got = label_log_probs(scores, torch.tensor([0, 1, 1]), 2)
    expected = torch.logaddexp(torch.tensor(-1000.0), torch.tensor(-1001.0))
    torch.testing.assert_close(got[0, 1], expected)


@pytest.mark.parametrize("labels", [[0, 1, 2, 0, 1, 2, 0, 0, 1], [0, 0, 0, 0, 1, 1, 1, 2, 2]], ids=["mixed", "grouped"])
def test_label_log_probs_gradient_matches_dense_softmax(labels):
    generator = torch.Generator().manual_seed(2)
    scores = torch.randn(4, 9, generator=generator, dtype=torch.double, requires_grad=True)
    labels = torch.tensor(labels)
    target = torch.tensor([0, 2, 1, 1])
    label_log_probs(scores, labels, 3).gather(1, target.view(-1, 1)).sum().backward()
    ours = scores.grad.clone()
    scores.grad = None
    brute_force_log_probs(scores, labels, 3).gather(1, target.view(-1, 1)).sum().backward()
    torch.testing.assert_close(ours, scores.grad)


@pytest.mark.parametrize("similarity", ["dot", "cosine"])
def test_chunked_top_k_equals_full_sort(similarity):
    memory, _, _ = filled_memory(similarity)
    queries = torch.randn(6, 8, generator=torch.Generator().manual_seed(3))
    full_scores, full_indices = memory.similarities(queries).sort(-1, descending=True)
    for chunk_size in (1, 5, 64, 1000):
        scores, indices = memory.top_k(queries, 4, chunk_size=chunk_size)
        torch.testing.assert_close(scores, full_scores[:, :4])
        assert torch.equal(indices, full_indices[:, :4])
    assert memory.top_k(queries, 1000)[1].shape == (6, 257)  # k capped at the memory size


def test_ids_labels_and_label_sums():
    memory = InstanceMemory(3, "cosine")
    memory.add(torch.tensor([[3.0, 4.0], [0.0, 2.0]]), torch.tensor([2, 0]), torch.tensor([[7, 0, 1], [7, 2, 2]]))
    memory.add(torch.tensor([[1.0, 0.0]]), torch.tensor([2]), torch.tensor([[9, 1, 1]]))
    # kept grouped by label, in the order added within a label
    assert len(memory) == 3 and memory.labels.tolist() == [0, 2, 2]
    assert memory.ids.tolist() == [[7, 2, 2], [7, 0, 1], [9, 1, 1]]
    torch.testing.assert_close(memory.label_sums(), torch.tensor([[0.0, 1.0], [0.0, 0.0], [1.6, 0.8]]))
    memory.clear()
    assert len(memory) == 0
    with pytest.raises(ValueError, match="empty"):
        memory.similarities(torch.zeros(1, 2))


def test_bad_arguments():
    with pytest.raises(ValueError, match="similarity must be one of dot, cosine"):
        InstanceMemory(2, "l2")
    memory = InstanceMemory(2)
    with pytest.raises(ValueError, match=r"labels must be in \[0, 2\)"):
        memory.add(torch.zeros(1, 3), torch.tensor([2]), torch.tensor([0]))
    with pytest.raises(ValueError, match="need vectors"):
        memory.add(torch.zeros(2, 3), torch.tensor([0]), torch.tensor([0]))


@pytest.mark.parametrize("similarity", ["dot", "cosine"])
def test_streamed_total_similarities_equal_the_full_matrix_sums(similarity, monkeypatch):
    generator = torch.Generator().manual_seed(3)
    memory = InstanceMemory(3, similarity)
    memory.add(torch.randn(50, 6, generator=generator, dtype=torch.float64), torch.randint(0, 3, (50,), generator=generator),
               torch.arange(50))
    queries = torch.randn(4, 6, generator=generator, dtype=torch.float64)
    expected = memory.similarities(queries).sum(1)
    chunks = []
    monkeypatch.setattr(InstanceMemory, "_chunks", counting(InstanceMemory._chunks, chunks))
    assert torch.allclose(memory.total_similarities(queries, chunk_size=7), expected)
    assert max(chunks) == 7 and len(chunks) == 8  # 50 rows: 7 full chunks and one of 1


def counting(chunks_method, sizes):
    """``InstanceMemory._chunks`` recording the number of rows of every chunk it yields into ``sizes``."""
    def chunks(self, *args, **kwargs):
        for start, scores in chunks_method(self, *args, **kwargs):
            sizes.append(scores.size(1))
            yield start, scores
    return chunks
