"""ALONE's V x d matrix E (modules/alone.py): kept in evaluation and never stale; chunked in training."""

import weakref

import pytest
import torch
import torch.nn.functional as F
from torch import nn
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


OPTIMIZERS = {
    "sgd": lambda params: torch.optim.SGD(params, lr=0.1),
    "adam": lambda params: torch.optim.Adam(params, lr=0.1),
    # Fused steps write the parameters without bumping their versions.
    "adam_fused": lambda params: torch.optim.Adam(params, lr=0.1, fused=True),
    "adamw_fused": lambda params: torch.optim.AdamW(params, lr=0.1, fused=True),
}


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_optimizer_step_refreshes(optimizer):
    embedding = small().eval()
    before = kept(embedding)
    step = OPTIMIZERS[optimizer](embedding.parameters())
    embedding(WORDS).sum().backward()  # autograd on: recomputed, even in eval mode
    step.step()
    after = kept(embedding)
    assert not torch.equal(after, before)
    assert torch.equal(after, recomputed(embedding))


def write_through_vector(embedding):
    """vector_to_parameters makes the parameters views of the vector: writes to it reach them unseen."""
    vector = nn.utils.parameters_to_vector(embedding.parameters())
    nn.utils.vector_to_parameters(vector, embedding.parameters())
    kept(embedding)
    vector.mul_(2.0)


# Writes by hand that bump no version of the parameter or buffer they change.
UNVERSIONED_WRITES = {
    "data": lambda embedding: embedding.o.data.mul_(2.0),
    "data_copy": lambda embedding: embedding.ffn[1].weight.data.copy_(embedding.ffn[1].weight.data.flip(0)),
    "vector_to_parameters": write_through_vector,
    "numpy_parameter": lambda embedding: embedding.ffn[0].weight.detach().numpy().__imul__(2.0),
    "numpy_codebooks": lambda embedding: embedding.codebooks.numpy().__setitem__(0, 1.0),
    "numpy_code_indices": lambda embedding: embedding.code_indices.numpy().__setitem__(slice(None), 0),
}


@pytest.mark.parametrize("write", UNVERSIONED_WRITES)
def test_writes_that_bump_no_version_refresh(write):
    """E is kept while every parameter and buffer equals its copy: a check of values, not versions."""
    embedding = small().eval()
    before = kept(embedding)
    UNVERSIONED_WRITES[write](embedding)
    after = kept(embedding)
    assert not torch.equal(after, before)
    assert torch.equal(after, recomputed(embedding))


def test_padding_idx_change_refreshes():
    embedding = small().eval()
    kept(embedding)
    embedding.padding_idx = 0
    matrix = kept(embedding)
    assert torch.equal(matrix[0], torch.zeros(16)) and matrix[PAD].abs().sum() > 0
    assert torch.equal(matrix, recomputed(embedding))


def test_load_state_dict_refreshes():
    embedding, other = small().eval(), small(seed=4)
    kept(embedding)
    embedding.load_state_dict(other.state_dict())
    assert torch.equal(kept(embedding), recomputed(other))


def test_eval_at_every_batch_computes_e_once():
    """fairseq's valid_step calls eval() before every batch: E is computed for the first only."""
    embedding = small().eval()
    counted = rows_through_ffn(embedding)
    for _ in range(3):
        embedding.eval()
        with torch.no_grad():
            TiedAloneProjection(embedding)(embedding(WORDS))
    assert sum(counted) == 50


@pytest.mark.parametrize("dtype", [torch.float16, torch.float64])
def test_cast_refreshes_and_frees_the_old_tensors(dtype):
    embedding = small().eval()
    old = weakref.ref(kept(embedding))
    embedding.to(dtype)
    assert old() is None  # freed by the cast, not at the next call
    matrix = kept(embedding)
    assert matrix.dtype == dtype
    assert torch.equal(matrix, recomputed(embedding))


def test_train_frees_e():
    embedding = small().eval()
    old = weakref.ref(kept(embedding))
    embedding.train()
    assert old() is None


def test_built_and_loaded_under_inference_mode():
    """Inference tensors have no version counter; a model built there (as from a checkpoint) still decodes."""
    trained = small(seed=4).eval()
    with torch.inference_mode():
        embedding = small().eval()
        embedding.load_state_dict(trained.state_dict())
        looked_up, matrix = embedding(WORDS), embedding.embedding_matrix()
    with torch.no_grad():
        assert torch.equal(looked_up, trained(WORDS))
        assert torch.equal(matrix, trained.embedding_matrix())
        assert torch.equal(embedding(WORDS), looked_up)


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
    with pytest.raises(ValueError, match="chunk_size must be >= 1"):
        small(chunk_size=0)
