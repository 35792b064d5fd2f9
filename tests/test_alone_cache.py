"""ALONE's V x d matrix E (modules/alone.py): kept in evaluation and never stale; chunked in training."""

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from conftest import TINY_MODEL
from test_alone_module import CreatedTensors

from fairseq_plugins.cli.dataless import model_from_flags
from fairseq_plugins.models.composable_transformer import TiedAloneProjection
from fairseq_plugins.modules.alone import AloneEmbedding

PAD = 1
WORDS = torch.tensor([[3, 7, PAD], [49, 0, 2]])


def small(**kwargs):
    return AloneEmbedding(50, 16, PAD, **{"inter_dim": 32, "seed": 3, **kwargs})


def recomputed(embedding):
    """E as training computes it: from the current parameters, whatever is kept."""
    with torch.enable_grad():
        return embedding.embedding_matrix().detach()


def kept(embedding):
    with torch.no_grad():
        return embedding.embedding_matrix()


def rows_through_ffn(embedding):
    """Counts the words the FFN embeds (the rows of its input), from now on."""
    counted = []
    embedding.ffn[0].register_forward_hook(lambda module, inputs, output: counted.append(inputs[0].shape[:-1].numel()))
    return counted


def test_evaluation_computes_e_once_and_looks_words_up_in_it():
    embedding = small(chunk_size=7).eval()
    counted = rows_through_ffn(embedding)
    with torch.no_grad():
        matrix = embedding.embedding_matrix()
        looked_up = [embedding(WORDS) for _ in range(3)]
        assert embedding.embedding_matrix() is matrix
    assert sum(counted) == 50  # the whole vocabulary once (in chunks of 7), then lookups only
    assert not matrix.requires_grad and matrix.grad_fn is None  # no autograd graph is kept
    assert set(embedding.state_dict()) == {"o", "ffn.0.weight", "ffn.1.weight", "codebooks", "code_indices"}
    assert torch.equal(matrix, recomputed(embedding))
    with torch.enable_grad():
        per_word = embedding(WORDS)  # the equation, word by word
    for output in looked_up:
        torch.testing.assert_close(output, per_word.detach(), rtol=0, atol=1e-6)
        assert torch.equal(output[0, 2], torch.zeros(16))  # padding


def test_model_outputs_equal_the_recomputed_ones():
    """Input lookups and the tied output projection of alone_transformer, kept E versus recomputed."""
    torch.manual_seed(0)
    model = model_from_flags(["--arch", "alone_transformer", *TINY_MODEL, "--share-all-embeddings",
                              "--alone-inter-dim", "64"], 300).eval()
    src = torch.randint(4, 300, (2, 7))
    prev = torch.randint(4, 300, (2, 5))
    prev[1, :2] = PAD
    lengths = torch.tensor([7, 7])
    with torch.no_grad():
        kept_logits = [model(src, lengths, prev)[0] for _ in range(2)]
    recomputed_logits = model(src, lengths, prev)[0]
    assert recomputed_logits.requires_grad
    for logits in kept_logits:
        torch.testing.assert_close(logits, recomputed_logits.detach(), rtol=1e-5, atol=1e-5)


class CalledOps(TorchDispatchMode):
    """Records the name of every aten op run."""

    def __init__(self):
        super().__init__()
        self.names = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.names.append(str(func.overloadpacket))
        return func(*args, **(kwargs or {}))


def test_tied_projection_is_one_matrix_product():
    """Incremental decoding hands (tokens, 1, d) features, strided as below; with E computed without
    autograd, F.linear on them would run one batched product per token instead of one product."""
    embedding = small().eval()
    features = torch.randn(1, 6, 16).transpose(0, 1)  # (6, 1, 16), stride (16, 96, 1)
    with torch.no_grad():
        expected = features @ embedding.embedding_matrix().T
        with CalledOps() as called:
            logits = TiedAloneProjection(embedding)(features)
    assert "aten.bmm" not in called.names and "aten.mm" in called.names, called.names
    torch.testing.assert_close(logits, expected)


@pytest.mark.parametrize("optimizer", [torch.optim.SGD, torch.optim.Adam])
def test_optimizer_step_refreshes(optimizer):
    embedding = small().eval()
    before = kept(embedding)
    step = optimizer(embedding.parameters(), lr=0.1)
    embedding(WORDS).sum().backward()  # autograd on: recomputed, even in eval mode
    step.step()
    after = kept(embedding)
    assert not torch.equal(after, before)
    assert torch.equal(after, recomputed(embedding))


def test_load_state_dict_refreshes():
    embedding, other = small().eval(), small(seed=4)
    kept(embedding)
    embedding.load_state_dict(other.state_dict())
    assert torch.equal(kept(embedding), recomputed(other))


def test_cast_refreshes():
    embedding = small().eval()
    kept(embedding)
    embedding.to(torch.float64)
    matrix = kept(embedding)
    assert matrix.dtype == torch.float64
    assert torch.equal(matrix, recomputed(embedding))


def test_kept_matrix_ignores_autocast():
    """E is kept in the parameters' dtype, as nn.Embedding's weight is, so it serves with and
    without autocast alike."""
    embedding = small().eval()
    with torch.autocast("cpu", dtype=torch.bfloat16), torch.no_grad():
        matrix = embedding.embedding_matrix()
        logits = TiedAloneProjection(embedding)(torch.randn(3, 16))
    assert matrix.dtype == torch.float32 and logits.dtype == torch.bfloat16  # autocast still runs the product
    assert torch.equal(matrix, recomputed(embedding))
    assert kept(embedding) is matrix


def test_mode_switch_drops_e_written_through_data():
    """fairseq's optimizers write through ``.data``, which bumps no version: in training mode, and
    switching mode drops E."""
    embedding = small().eval()
    before = kept(embedding)
    embedding.train()
    embedding.o.data.mul_(2.0)
    embedding.eval()
    after = kept(embedding)
    assert not torch.equal(after, before)
    assert torch.equal(after, recomputed(embedding))


def test_training_never_uses_the_kept_matrix():
    embedding = small(relu_dropout=0.5).eval()
    matrix = kept(embedding)
    embedding.train()
    counted = rows_through_ffn(embedding)
    with torch.no_grad():
        assert embedding.embedding_matrix() is not matrix
        assert not torch.equal(embedding(WORDS), embedding(WORDS))  # ReLU dropout per word, no lookup
    assert sum(counted) == 50 + 2 * WORDS.numel()
    (embedding(WORDS).sum() + embedding.embedding_matrix().square().sum()).backward()
    assert all(param.grad is not None and param.grad.abs().sum() > 0 for param in embedding.parameters())


@pytest.mark.parametrize("chunk_size", [7, 49])
def test_chunks_give_the_unchunked_outputs_and_gradients(chunk_size):
    chunked, whole = small(chunk_size=chunk_size), small(chunk_size=None)
    features, weights = torch.randn(2, 5, 16), torch.randn(2, 5, 50)
    grads = []
    for embedding in (chunked, whole):
        logits = F.linear(features, embedding.embedding_matrix())  # the tied output projection
        ((logits * weights).sum() + embedding(WORDS).square().sum()).backward()
        grads.append([param.grad for param in embedding.parameters()])
        assert torch.equal(embedding.embedding_matrix()[PAD], torch.zeros(16))
    torch.testing.assert_close(chunked.embedding_matrix(), whole.embedding_matrix(), rtol=0, atol=1e-6)
    for chunked_grad, whole_grad in zip(*grads):
        torch.testing.assert_close(chunked_grad, whole_grad, rtol=1e-5, atol=1e-5)


def training_step_memory(embedding, dim):
    """Elements kept for the backward by the forward of the tied output projection, and the largest
    tensor created by the forward and the backward (recomputation included)."""
    kept_for_backward = []

    def pack(tensor):
        kept_for_backward.append(tensor.numel())
        return tensor

    with CreatedTensors() as created:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            loss = F.linear(torch.randn(4, dim), embedding.embedding_matrix()).logsumexp(-1).sum()
        loss.backward()
    return sum(kept_for_backward), max(created.sizes)[0]


def test_chunks_bound_the_activations():
    """With chunks, the forward keeps no D_inter-wide activations for the backward, and the backward
    recomputes one chunk's at a time; without, V x D_inter ones are kept."""
    vocab, dim, inter = 3000, 16, 256
    memory = {chunk: training_step_memory(AloneEmbedding(vocab, dim, PAD, inter_dim=inter, chunk_size=chunk), dim)
              for chunk in (500, None)}
    print(f"(elements kept for the backward, largest tensor): {memory}; V x D_inter = {vocab * inter}")
    assert memory[None][0] >= vocab * inter and memory[None][1] >= vocab * inter
    assert memory[500][0] < vocab * inter / 20  # E (V x d), the logits and the inputs
    assert memory[500][1] <= 500 * inter


def test_bad_chunk_size():
    with pytest.raises(ValueError, match="chunk_size must be at least 1"):
        small(chunk_size=0)
