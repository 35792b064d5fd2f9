"""Pretrained word-vector files, read line by line into numpy, and the vocabulary built on them.

Formats: GloVe text (``word v1 ... vd`` per line), word2vec text and fastText ``.vec`` (the same,
after a header line ``count d``), and tokens containing spaces (glove.840B.300d): the last ``d``
fields of a line are the vector, everything before them the token. ``d`` is the header's, else
the first line's field count minus one. A token's first occurrence wins.

``read_word_vectors`` never holds the file's lines: each line is parsed into a row of a float32
block as it is read.

``PretrainedWords`` is the vocabulary of ``--word-embeddings`` (Ouchi et al.'s
``build_word_vocab_pretrained``): the specials, then the training words without a vector
(trainable, randomly initialised: they are in the training data, so they get gradients), then
every word of the file in file order, then the training words found only lowercased (their own
copy of the lowercased word's vector, so that ``Obama`` keeps its characters); ids from
``first_pretrained`` on have fixed vectors. A word it does not hold is looked up lowercased
before it falls back to ``<unk>`` (GloVe 6B's words are lowercase).
"""

import logging

import numpy as np

from fairseq.data import Dictionary

from fairseq_plugins.errors import ConfigError

logger = logging.getLogger(__name__)

ROWS_PER_BLOCK = 65536


def _header(fields):
    """``d`` of a word2vec/fastText header line ``count d``, else None."""
    return int(fields[1]) if len(fields) == 2 and fields[0].isdigit() and fields[1].isdigit() else None


def read_word_vectors(path):
    """``(words, vectors (n, d) float32)`` of the file's tokens."""
    words, seen, blocks, block, filled, dim = [], set(), [], None, 0, None
    try:
        with open(path, encoding="utf-8", errors="strict") as file:
            for number, line in enumerate(file, 1):
                line = line.rstrip("\n").rstrip(" \r")
                if dim is None:
                    dim = _header(line.split(" "))
                    if dim is not None:
                        continue
                    dim = len(line.split(" ")) - 1
                fields = line.rsplit(" ", dim)
                if len(fields) != dim + 1 or not fields[0]:
                    raise ConfigError(f"--word-embeddings {path}:{number}: expected a token and {dim} values, got "
                                      f"{len(fields) - 1} fields after the token")
                word = fields[0]
                if word in seen:
                    continue
                if block is None or filled == len(block):
                    block, filled = np.empty((ROWS_PER_BLOCK, dim), dtype=np.float32), 0
                    blocks.append(block)
                try:
                    block[filled] = fields[1:]
                except ValueError:
                    raise ConfigError(f"--word-embeddings {path}:{number}: a value that is not a number") from None
                filled += 1
                seen.add(word)
                words.append(word)
    except OSError as error:
        raise ConfigError(f"--word-embeddings {path}: {error.strerror}") from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"--word-embeddings {path}: not UTF-8 text ({error.reason})") from None
    if not words:
        return words, np.zeros((0, dim or 0), dtype=np.float32)
    blocks[-1] = blocks[-1][:filled]
    return words, np.concatenate(blocks) if len(blocks) > 1 else blocks[0].copy()


class PretrainedWords(Dictionary):
    """A fairseq Dictionary whose ids from ``first_pretrained`` on are words with fixed pretrained
    vectors (``vectors``, kept only while training starts: the checkpoint holds them in the model),
    looking unknown words up lowercased before ``<unk>``."""

    first_pretrained = None
    vectors = None

    def index(self, sym):
        if sym not in self.indices and sym.lower() in self.indices:
            return self.indices[sym.lower()]
        return super().index(sym)


def pretrained_vocabulary(counts, path, extra_symbols=()):
    """``PretrainedWords`` of the training words ``counts`` (a Counter) and the vector file ``path``
    (see the module docstring); ``extra_symbols`` (e.g. a parser's ``<root>``) come after the specials."""
    file_words, vectors = read_word_vectors(path)
    row = {word: index for index, word in enumerate(file_words)}  # also the membership test
    words = PretrainedWords()
    for symbol in extra_symbols:
        words.add_symbol(symbol)
    for word, _ in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        if word not in row and word.lower() not in row:
            words.add_symbol(word)
    words.first_pretrained = len(words)
    for word in file_words:
        words.add_symbol(word)
    lowercased = sorted(word for word in counts if word not in row and word.lower() in row)
    for word in lowercased:
        words.add_symbol(word)
    words.vectors = np.concatenate([vectors, vectors[[row[word.lower()] for word in lowercased]]])
    logger.info("--word-embeddings %s: %d words (%d dims), %d training words without a vector (trainable), %d "
                "found lowercased", path, len(file_words), vectors.shape[1], words.first_pretrained - words.nspecial
                - len(extra_symbols), len(lowercased))
    return words
