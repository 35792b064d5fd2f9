"""The character CNN and highway layers against their equations computed by hand, the partly
pretrained embedding, the vector-file reader (GloVe, word2vec/fastText header, tokens with
spaces) and the vocabulary built on it."""

import re
from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from fairseq_plugins.data.word_vectors import pretrained_vocabulary, read_word_vectors
from fairseq_plugins.errors import ConfigError
from fairseq_plugins.models.token_encoders import BiLSTMTokenEncoder, build_token_encoder, word_characters
from fairseq_plugins.modules.char_encoder import CharacterCNN, Highway, PartlyPretrainedEmbedding


def test_character_cnn_is_the_max_over_each_words_window_sums():
    torch.manual_seed(0)
    cnn = CharacterCNN(num_characters=6, embed_dim=3, filters=4, kernel_width=3)
    characters = torch.tensor([[1, 2, 3, 0, 0], [5, 0, 0, 0, 0], [4, 4, 2, 1, 3], [0, 0, 0, 0, 0]])
    out = cnn(characters)
    E, W, b = cnn.embed_characters.weight, cnn.conv.weight, cnn.conv.bias  # W: (F, e, k)
    for row, word in enumerate(characters.tolist()):
        n = sum(c != 0 for c in word)
        if n == 0:
            torch.testing.assert_close(out[row], torch.zeros(4))
            continue
        windows = []
        for t in range(n):  # u_t = b + sum_o W[:, :, o] E[c_{t + o - 1}], zero outside the word
            u = b.clone()
            for o in range(3):
                if 0 <= t + o - 1 < n:
                    u = u + W[:, :, o] @ E[word[t + o - 1]]
            windows.append(u)
        torch.testing.assert_close(out[row], torch.stack(windows).amax(0))


def test_highway_layers_follow_the_gate_equation():
    torch.manual_seed(0)
    highway = Highway(5, layers=2)
    x = torch.randn(3, 5)
    expected = x
    for transform, gate in zip(highway.transforms, highway.gates):
        g = torch.sigmoid(expected @ gate.weight.t() + gate.bias)
        expected = g * torch.relu(expected @ transform.weight.t() + transform.bias) + (1 - g) * expected
    torch.testing.assert_close(highway(x), expected)


def test_partly_pretrained_embedding_trains_only_the_rows_before_the_pretrained_ones():
    embedding = PartlyPretrainedEmbedding(num_words=7, first_pretrained=3, embed_dim=2, padding_idx=1)
    with torch.no_grad():
        embedding.pretrained.copy_(torch.arange(8.0).view(4, 2))
    ids = torch.tensor([[0, 3, 6, 2]])
    out = embedding(ids)
    torch.testing.assert_close(out[0, 1], torch.tensor([0.0, 1.0]))
    torch.testing.assert_close(out[0, 2], torch.tensor([6.0, 7.0]))
    torch.testing.assert_close(out[0, 3], embedding.trained.weight[2])
    out.sum().backward()
    assert not embedding.pretrained.requires_grad and embedding.pretrained.grad is None
    assert embedding.trained.weight.grad[[0, 2]].abs().sum() > 0 and embedding.trained.weight.grad[1].abs().sum() == 0


def write(path, text):
    path.write_text(text)
    return str(path)


def test_reader_glove_word2vec_header_spaces_and_first_occurrence(tmp_path):
    glove = write(tmp_path / "g.txt", "the 1 2\n. . . 3 4\nthe 9 9\nCat 5 6 \n")
    words, vectors = read_word_vectors(glove)
    assert words == ["the", ". . .", "Cat"]  # a token with spaces: everything before the last d fields
    np.testing.assert_array_equal(vectors, np.array([[1, 2], [3, 4], [5, 6]], dtype=np.float32))
    assert vectors.dtype == np.float32
    word2vec = write(tmp_path / "w.vec", "2 3\nx 1 2 3\ny 4 5 6\n")
    words, vectors = read_word_vectors(word2vec)  # the header line is not a word
    assert words == ["x", "y"] and vectors.tolist() == [[1, 2, 3], [4, 5, 6]]


@pytest.mark.parametrize("text, message", [
    ("a 1 2\nb 1\n", ":2: expected a token and 2 values, got 1 fields after the token"),
    ("a 1 2\nb 1 x\n", ":2: a value that is not a number"),
])
def test_reader_names_the_bad_line(tmp_path, text, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        read_word_vectors(write(tmp_path / "bad.txt", text))


def test_vocabulary_is_the_files_words_plus_the_training_words_it_lacks(tmp_path):
    path = write(tmp_path / "v.txt", "paris 1 1\nthe 2 2\nlondon 3 3\n")
    words = pretrained_vocabulary(Counter({"the": 3, "Paris": 2, "zorp": 1, "qux": 2}), path)
    first = words.first_pretrained
    assert words.symbols[words.nspecial:first] == ["qux", "zorp"]  # trainable: no vector, by count
    assert words.symbols[first:] == ["paris", "the", "london", "Paris"]  # file order, then lowercased finds
    np.testing.assert_array_equal(words.vectors, [[1, 1], [2, 2], [3, 3], [1, 1]])
    assert words.index("London") == words.index("london") and words.index("Paris") != words.index("paris")
    assert words.index("Nowhere") == words.unk()


def test_words_characters_travel_with_the_dictionary_and_feed_the_bilstm(tmp_path):
    words = pretrained_vocabulary(Counter({"ab": 1}), write(tmp_path / "v.txt", "ba 1 1\n"))
    table, count = word_characters(words)
    spelled = "".join(symbol for index, symbol in enumerate(words.symbols) if index != words.pad())
    assert table[words.pad()].abs().sum() == 0 and count == len(set(spelled)) + 1  # (+ 1: id 0, padding)
    assert table[words.index("ab")][:2].tolist() == table[words.index("ba")][:2].flip(0).tolist()
    encoder = BiLSTMTokenEncoder(words, 2, 4, 1, 0.0, 0.0, 64, freeze_embeddings=True, char_embed_dim=3,
                                 char_filters=5, char_kernel_width=3)
    assert encoder.lstm.input_size == 2 + 5 and "word_characters" not in encoder.state_dict()
    states, padding = encoder(torch.tensor([[words.index("ab"), words.index("ba"), words.pad()]]))
    assert states.shape == (1, 3, 8) and padding.tolist() == [[False, False, True]]


@pytest.mark.parametrize("options, message", [
    (dict(encoder_type="transformer", char_filters=8), "--char-filters needs --encoder-type bilstm"),
    (dict(char_filters=8, char_kernel_width=2), "--char-kernel-width must be odd (got 2)"),
])
def test_bad_character_options(tmp_path, options, message):
    from fairseq.data import Dictionary
    from fairseq_plugins.models.token_encoders import TokenEncoderConfig

    cfg = TokenEncoderConfig(**options)
    with pytest.raises(ConfigError, match=re.escape(message)):
        build_token_encoder(cfg, Dictionary())



def test_the_parser_gets_characters_through_the_shared_token_encoder(tmp_path):
    from conftest import build_through_namespace_api
    from fairseq_plugins.data.sentences import batches_in_index_order
    from fairseq_plugins.tasks.dependency_parsing import DependencyParsingConfig, DependencyParsingTask
    from parsing_helpers import write_treebank

    data = write_treebank(tmp_path / "treebank", (("train", 12), ("valid", 3)))
    args, model = build_through_namespace_api(data, "dependency_parsing", "dependency_parser_bilstm", "--criterion",
                                              "dependency_parsing", "--char-filters", 6, "--char-embed-dim", 4)
    assert model.encoder.lstm.input_size == args.encoder_embed_dim + 6  # no parser code reads characters
    train = DependencyParsingTask.setup_task(DependencyParsingConfig(data=data, seed=1)).load_dataset("train")
    src_tokens = next(batches_in_index_order(train, 4))["net_input"]["src_tokens"]
    states, padding = model.encoder(src_tokens)
    assert states.shape[:2] == src_tokens.shape and padding.equal(src_tokens.eq(1))
