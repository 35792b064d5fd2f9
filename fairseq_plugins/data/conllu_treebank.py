"""CoNLL-U treebanks and the dependency-parsing dataset.

The reader keeps word lines only: multi-word token lines (``1-2``) and empty nodes (``1.1``) are
skipped, comments are kept out. A malformed line, word ids that do not run 1, 2, ..., a head out of
range, and a gold tree with no root, several roots or a cycle are one-line errors naming the file
and line. Labels are DEPREL as written (UD subtypes such as ``nmod:poss`` kept). New input to parse
(``sentences_to_parse``, for fairseq-plugins-predict) may have ``_`` (or any) HEAD and DEPREL;
``with_parse`` writes a parse into the sentence's lines, changing nothing else.

(The ``conllu`` package does not fit: it gives no line numbers to name in errors, and it accepts
lines this reader refuses, such as fewer than 10 columns or columns separated by two spaces.)

``DependencyDataset`` batches::

    {"id": (B,) sentence index in its split,
     "net_input": {"src_tokens": (B, T), "src_lengths": (B,)},   # position 0: <root>, then the words
     "target": (B, T) gold head of each position, -1 at the root and padding,
     "labels": (B, T) gold label index, -1 where none (root, padding, label unseen in training),
     "punct": (B, T) True for punctuation words, "scored": (B, T) True for words the metrics count,
     "nsentences": B, "ntokens": words}

A word is punctuation when every character is in Unicode category P (SuPar's convention).
"""

import os
import re
import unicodedata
from collections import namedtuple

import numpy as np
import torch

from fairseq_plugins.data.sentences import LengthOrderedSentences
from fairseq_plugins.data.text_input import numbered_lines
from fairseq_plugins.errors import ConfigError
from fairseq_plugins.modules.tree_decoding import find_cycle

ROOT = "<root>"
INPUT_FIELDS = ("form", "lemma", "upos")
MULTIWORD_OR_EMPTY = re.compile(r"^\d+(-|\.)\d+$")

Sentence = namedtuple("Sentence", "name line form lemma upos heads labels")


def is_punctuation(word):
    return bool(word) and all(unicodedata.category(char).startswith("P") for char in word)


def is_word_index(text):
    """ASCII digits only: ``str.isdigit`` also accepts other scripts' digits and superscripts."""
    return text.isascii() and text.isdigit()


def _columns(path, number, line, expected_id):
    """The 10 columns of word ``expected_id``'s line."""
    columns = line.split("\t")
    if len(columns) != 10:
        raise ConfigError(f"{path}:{number}: expected 10 tab-separated CoNLL-U columns, got {len(columns)}")
    if columns[0] != str(expected_id):
        raise ConfigError(f"{path}:{number}: word id {columns[0]!r} where {expected_id} was expected (ids run 1, 2, ...)")
    return columns


def _word_line(path, number, line, expected_id):
    """The columns of a gold word line: HEAD a word index, DEPREL given."""
    columns = _columns(path, number, line, expected_id)
    if not is_word_index(columns[6]):
        raise ConfigError(f"{path}:{number}: HEAD {columns[6]!r} is not a word index")
    if columns[7] in ("", "_"):
        raise ConfigError(f"{path}:{number}: word {expected_id} has no DEPREL label")
    return columns


def _sentence(path, lines, name, first):
    """A checked Sentence from ``[(line number, columns)]``; ``first``: the line the sentence starts on."""
    n = len(lines)
    heads = [int(columns[6]) for _, columns in lines]
    for (number, _), head in zip(lines, heads):
        if head > n:
            raise ConfigError(f"{path}:{number}: head {head} is out of range (sentence {name} has {n} words)")
    roots = [d + 1 for d, head in enumerate(heads) if head == 0]
    if len(roots) != 1:
        what = "no root" if not roots else f"{len(roots)} roots (words {', '.join(map(str, roots))})"
        raise ConfigError(f"{path}:{first}: sentence {name} has {what}; a gold tree needs exactly one word with head 0")
    cycle = find_cycle(np.array([-1] + heads))
    if cycle is not None:
        raise ConfigError(f"{path}:{first}: sentence {name} has a cycle through words {', '.join(map(str, sorted(cycle)))}")
    return Sentence(name, first, *([columns[c] for _, columns in lines] for c in (1, 2, 3)),
                    heads, [columns[7] for _, columns in lines])


def conllu_blocks(path, lines):
    """``(first line number, sent_id or None, every line, word lines as (number, line))`` of each
    sentence of CoNLL-U ``lines`` (``(number, text)`` pairs), lazily."""
    block, words, sent_id, first = [], [], None, None
    for number, line in lines:
        if not line.strip():
            if block:
                yield first, sent_id, block, words
            block, words, sent_id, first = [], [], None, None
            continue
        first = first or number
        block.append(line)
        if line.startswith("#"):
            match = re.match(r"#\s*sent_id\s*=\s*(\S+)", line)
            sent_id = match.group(1) if match and not words else sent_id
        elif not MULTIWORD_OR_EMPTY.match(line.split("\t", 1)[0]):
            words.append((number, line))
    if block:
        yield first, sent_id, block, words


def read_conllu(path):
    """The sentences of a CoNLL-U file; one-line ConfigErrors for anything malformed (see module docstring)."""
    if not os.path.isfile(path):
        raise ConfigError(f"{path} does not exist")
    sentences = []
    for first, sent_id, _, words in conllu_blocks(path, numbered_lines(path)):
        if words:
            columns = [(number, _word_line(path, number, line, i)) for i, (number, line) in enumerate(words, 1)]
            sentences.append(_sentence(path, columns, sent_id or f"#{len(sentences) + 1}", first))
    if not sentences:
        raise ConfigError(f"{path} holds no sentences")
    return sentences


def sentences_to_parse(path, lines):
    """``(Sentence or None, the block's lines)`` of each sentence of CoNLL-U input to parse, lazily:
    HEAD and DEPREL may be ``_`` (or anything: they are ignored); a block without words gives None."""
    for count, (first, sent_id, block, words) in enumerate(conllu_blocks(path, lines), 1):
        columns = [_columns(path, number, line, i) for i, (number, line) in enumerate(words, 1)]
        forms, lemmas, tags = ([word[c] for word in columns] for c in (1, 2, 3))
        sentence = Sentence(sent_id or f"#{count}", first, forms, lemmas, tags, [0] * len(forms), ["_"] * len(forms))
        yield (sentence if words else None), block


def with_parse(block, heads, labels):
    """The lines of ``block`` with HEAD and DEPREL of its words replaced; every other line and column as it was."""
    out, word = [], 0
    for line in block:
        columns = line.split("\t")
        if not line.startswith("#") and not MULTIWORD_OR_EMPTY.match(columns[0]):
            columns[6], columns[7] = str(heads[word]), labels[word]
            word += 1
            line = "\t".join(columns)
        out.append(line)
    return out


class DependencyDataset(LengthOrderedSentences):
    """Sentences as tensors; see the module docstring for the batch layout.

    ``words``: a fairseq Dictionary holding ``ROOT``; ``label_index``: label -> index (a label not in
    it gets -1: unseen in training); ``input_field``: the Sentence field the encoder reads (one of
    ``INPUT_FIELDS``); ``excluded_labels``: gold labels whose words no metric counts.
    """

    def __init__(self, sentences, words, label_index, input_field, excluded_labels, shuffle, seed):
        self.sentences = sentences
        self.items = [{
            "src_tokens": torch.tensor([words.index(w) for w in [ROOT] + getattr(sentence, input_field)]),
            "heads": torch.tensor([-1] + sentence.heads),
            "labels": torch.tensor([-1] + [label_index.get(label, -1) for label in sentence.labels]),
            "punct": torch.tensor([False] + [is_punctuation(w) for w in sentence.form]),
            "scored": torch.tensor([False] + [label not in excluded_labels for label in sentence.labels]),
        } for sentence in sentences]
        self.pad, self.shuffle, self.seed = words.pad(), shuffle, seed
        self.sizes = np.array([len(item["src_tokens"]) for item in self.items], dtype=np.int64)

    def __getitem__(self, index):
        return {"id": index, **self.items[index]}

    def collater(self, samples):
        if not samples:
            return {}
        width = max(len(s["src_tokens"]) for s in samples)

        def padded(key, value):
            out = torch.full((len(samples), width), value, dtype=samples[0][key].dtype)
            for row, s in enumerate(samples):
                out[row, : len(s[key])] = s[key]
            return out

        lengths = torch.tensor([len(s["src_tokens"]) for s in samples])
        return {
            "id": torch.tensor([s["id"] for s in samples]),
            "nsentences": len(samples),
            "ntokens": int(lengths.sum()) - len(samples),
            "net_input": {"src_tokens": padded("src_tokens", self.pad), "src_lengths": lengths},
            "target": padded("heads", -1),
            "labels": padded("labels", -1),
            "punct": padded("punct", False),
            "scored": padded("scored", False),
        }
