"""CoNLL NER files and the span NER dataset.

A file: one token per line, whitespace-separated columns, the token in the first column and its
tag in the last; a blank line ends a sentence; ``-DOCSTART-`` lines are skipped. Tags in IOB1,
IOB2 or BIOES (``scheme="auto"`` picks BIOES when a file has ``E-``/``S-`` tags, else the IOB
reading, which covers IOB1 and IOB2); entities become spans ``(start, end, type)``. A bad line or
tag is a one-line error naming file and line. New text to tag (fairseq-plugins-predict) is read
lazily, without tags: ``untagged_conll_sentences`` or ``raw_text_sentences`` (one sentence a line).

``SpanNerDataset`` batches::

    {"id": (B,) sentence index in its split,   "net_input": {"src_tokens": (B, T), "src_lengths": (B,)},
     "target": (B, T, L) gold label of span (i, i + w), -1 past the sentence end,
     "gold_tags": per sentence, the gold entities as IOB2 tags (entities longer than L included),
     "nsentences", "ntokens"}
"""

import os
import re

import numpy as np
import torch

from fairseq.data import data_utils

from fairseq_plugins.data.sentences import LengthOrderedSentences
from fairseq_plugins.data.text_input import numbered_lines
from fairseq_plugins.errors import ConfigError
from fairseq_plugins.modules.spans import SCHEMES, detect_scheme, label_grid, spans_to_iob2, tags_to_spans

DOCSTART = "-DOCSTART-"


class Sentence:
    """One sentence: words, gold entities ``(start, end, type)``, and where it starts in its file."""

    __slots__ = ("words", "entities", "line")

    def __init__(self, words, entities, line):
        self.words, self.entities, self.line = words, entities, line


TAG = re.compile(r"^(O|[BIES]-\S+)$")


def comment_error(path, number, line):
    return ConfigError(f"{path}:{number}: {line.strip()!r} looks like a comment line, which CoNLL NER files do not "
                       "have (one token and its tag per line); remove it")


def read_conll(path, scheme):
    """The sentences of a CoNLL file; a bad line or tag is a one-line error naming file and line."""
    if not os.path.exists(path):
        raise ConfigError(f"{path} does not exist")
    sentences, rows = [], []  # rows: (line number, token, tag)

    def end_sentence():
        if rows:
            sentences.append(rows[:])
            rows.clear()

    for number, line in numbered_lines(path):
        columns = line.split()
        if not columns:
            end_sentence()
        elif columns[0] == DOCSTART:
            end_sentence()
        elif len(columns) < 2:
            raise ConfigError(f"{path}:{number}: a token line needs the token and its tag (last column), got {line.strip()!r}; "
                              "fairseq-plugins-predict reads files without tags")
        elif columns[0].startswith("#") and not TAG.match(columns[-1]):
            raise comment_error(path, number, line)
        else:
            rows.append((number, columns[0], columns[-1]))
    end_sentence()
    if not sentences:
        raise ConfigError(f"{path}: no sentences (one token and its tag per line, a blank line between sentences)")
    if scheme == "auto":
        scheme = detect_scheme([tag for _, _, tag in sentence] for sentence in sentences)
    result = []
    for sentence in sentences:
        try:
            entities = tags_to_spans([tag for _, _, tag in sentence], scheme)
        except ValueError as error:
            position, message = error.args
            raise ConfigError(f"{path}:{sentence[position][0]}: {message}; set --tag-scheme (one of {', '.join(SCHEMES)})") from None
        result.append(Sentence([word for _, word, _ in sentence], entities, sentence[0][0]))
    return result


def untagged_conll_sentences(lines, path):
    """Sentences (no entities) of CoNLL lines without tags, lazily: the token is each line's first
    column, a blank line ends a sentence; ``lines``: ``(number, text)`` pairs."""
    words, first = [], None
    for number, line in lines:
        columns = line.split()
        if not columns or columns[0] == DOCSTART:
            if words:
                yield Sentence(words, [], first)
            words, first = [], None
        elif columns[0].startswith("#") and len(columns) > 1 and not TAG.match(columns[-1]):
            raise comment_error(path, number, line)
        else:
            words.append(columns[0])
            first = first or number
    if words:
        yield Sentence(words, [], first)


def raw_text_sentences(lines):
    """One sentence per non-blank line, tokens split at whitespace, lazily."""
    for number, line in lines:
        if line.split():
            yield Sentence(line.split(), [], number)


class SpanNerDataset(LengthOrderedSentences):
    """Sentences as token ids with their gold span grids (``words``: a fairseq Dictionary; ``label_index``:
    entity type -> label index); see the module docstring for the batch layout."""

    def __init__(self, sentences, words, label_index, max_span_length, shuffle, seed):
        self.sentences = sentences
        self.tokens = [torch.tensor([words.index(w) for w in s.words], dtype=torch.long) for s in sentences]
        self.entities = [[(start, end, label_index[kind]) for start, end, kind in s.entities] for s in sentences]
        self.sizes = np.array([len(s.words) for s in sentences], dtype=np.int64)
        self.pad, self.max_span_length = words.pad(), max_span_length
        self.shuffle, self.seed = shuffle, seed

    def __getitem__(self, index):
        return {"id": index, "source": self.tokens[index]}

    def collater(self, samples):
        if not samples:
            return {}
        ids = [s["id"] for s in samples]
        lengths = torch.tensor([len(s["source"]) for s in samples])
        longest = int(lengths.max())
        target = torch.full((len(samples), longest, self.max_span_length), -1, dtype=torch.long)
        for row, index in enumerate(ids):
            target[row, :lengths[row]] = label_grid(self.entities[index], int(lengths[row]), self.max_span_length)
        return {
            "id": torch.tensor(ids),
            "nsentences": len(samples),
            "ntokens": int(lengths.sum()),
            "net_input": {
                "src_tokens": data_utils.collate_tokens([s["source"] for s in samples], self.pad),
                "src_lengths": lengths,
            },
            "target": target,
            "gold_tags": [spans_to_iob2(self.sentences[i].entities, len(self.sentences[i].words)) for i in ids],
        }
