"""``dependency_parsing``: CoNLL-U treebanks, batches with ``id``s, UAS/LAS and well-formedness.

Data: ``DATA/train.conllu``, ``DATA/valid.conllu`` and (optionally) ``DATA/test.conllu``. The
reader keeps word lines only: multi-word token lines (``1-2``) and empty nodes (``1.1``) are
skipped, comments are kept out. A malformed line, word ids that do not run 1, 2, ..., a head out of
range, and a gold tree with no root, several roots or a cycle are one-line errors naming the file
and line. Labels are DEPREL as written (UD subtypes such as ``nmod:poss`` kept). New input to parse
(``sentences_to_parse``, for fairseq-plugins-predict) may have ``_`` (or any) HEAD and DEPREL;
``with_parse`` writes a parse into the sentence's lines, changing nothing else.

Vocabulary (built from ``train.conllu`` when training starts, and carried by every checkpoint, so
evaluating one maps words and labels as training did: ``sentence_dataset.VocabularyInCheckpoint``):
``--input-field`` (form, lemma or upos) values seen at least ``--min-word-count`` times in
training; the rest, and every unseen word at test time, map to ``<unk>``, which the training
singletons teach. Labels: those of the training data; a valid/test label never seen in training
counts as wrong (LAS) and is left out of the loss.

Batches::

    {"id": (B,) sentence index in its split,
     "net_input": {"src_tokens": (B, T), "src_lengths": (B,)},   # position 0: <root>, then the words
     "target": (B, T) gold head of each position, -1 at the root and padding,
     "labels": (B, T) gold label index, -1 where none (root, padding, label unseen in training),
     "punct": (B, T) True for punctuation words, "scored": (B, T) True for words the metrics count,
     "nsentences": B, "ntokens": words}

Metrics (logged by fairseq-train's validation and fairseq-validate, percent): ``uas``/``las``
without punctuation (a word is punctuation when every character is in Unicode category P, SuPar's
convention), ``uas_punct``/``las_punct`` with it, ``well_formed`` (sentences whose decoded heads
are a tree), and ``las_ud``: LAS as the CoNLL 2018 shared task's evaluator computes it (punctuation
included, labels compared by their universal relation, the part before ``:``). LAS counts a label only on a word whose head is right. ``--eval-exclude-labels ig``
leaves the words with those gold labels out of every metric (the Turkish treebank's inflectional
groups).

Instance set (for models with instance-based heads, ``model.uses_instances``): each training
step encodes ``--instance-sentences`` K training sentences sampled without the batch's own (seeded
by ``--seed`` and the update number, so a resumed run samples what an uninterrupted one would);
validation encodes the whole training set, once per validation after training changed the model.
A checkpoint being evaluated reads ``train.conllu`` only for that, and only the file it was
trained on (its sha256 is in the checkpoint).
"""

import logging
import os
import re
import unicodedata
from collections import Counter, namedtuple
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import torch
from omegaconf import II

from fairseq.data import Dictionary
from fairseq.dataclass import FairseqDataclass
from fairseq.tasks import FairseqTask, register_task

from fairseq_plugins.cli.checkpoints import batches_in_index_order
from fairseq_plugins.errors import ConfigError
from fairseq_plugins.modules.tree_decoding import find_cycle
from fairseq_plugins.options import check_choices, choice_field
from fairseq_plugins.tasks.sentence_dataset import (LengthOrderedSentences, VocabularyInCheckpoint, on_device,
                                                     vocabulary)
from fairseq_plugins.tasks.text_input import numbered_lines

logger = logging.getLogger(__name__)

ROOT = "<root>"
INPUT_FIELDS = ("form", "lemma", "upos")
MULTIWORD_OR_EMPTY = re.compile(r"^\d+(-|\.)\d+$")
ENCODE_BATCH = 64  # sentences per forward pass when encoding the instance set

Sentence = namedtuple("Sentence", "name line form lemma upos heads labels")


@dataclass
class DependencyParsingConfig(FairseqDataclass):
    data: str = field(default=".", metadata={"help": "directory with train.conllu, valid.conllu (and test.conllu)"})
    input_field: str = choice_field("form", INPUT_FIELDS, "CoNLL-U column the encoder reads")
    min_word_count: int = field(
        default=2, metadata={"help": "training count below which a word maps to <unk> (which it then teaches)"}
    )
    max_positions: int = field(default=512, metadata={"help": "longest sentence in words, plus one for the root"})
    instance_sentences: int = field(
        default=32, metadata={"help": "instance-based heads: training sentences sampled as the instance set per batch"}
    )
    eval_exclude_labels: str = field(
        default="", metadata={"help": "comma-separated gold labels whose words every metric leaves out (e.g. ig)"}
    )
    seed: int = II("common.seed")


def is_punctuation(word):
    return bool(word) and all(unicodedata.category(char).startswith("P") for char in word)


def is_word_index(text):
    """ASCII digits only: ``str.isdigit`` also accepts other scripts' digits and superscripts."""
    return text.isascii() and text.isdigit()


def _word_line(path, number, line, expected_id):
    columns = line.split("\t")
    if len(columns) != 10:
        raise ConfigError(f"{path}:{number}: expected 10 tab-separated CoNLL-U columns, got {len(columns)}")
    if columns[0] != str(expected_id):
        raise ConfigError(f"{path}:{number}: word id {columns[0]!r} where {expected_id} was expected (ids run 1, 2, ...)")
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
        forms, lemmas, tags = [], [], []
        for i, (number, line) in enumerate(words, 1):
            columns = line.split("\t")
            if len(columns) != 10:
                raise ConfigError(f"{path}:{number}: expected 10 tab-separated CoNLL-U columns, got {len(columns)}")
            if columns[0] != str(i):
                raise ConfigError(f"{path}:{number}: word id {columns[0]!r} where {i} was expected (ids run 1, 2, ...)")
            forms.append(columns[1])
            lemmas.append(columns[2])
            tags.append(columns[3])
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
    """Sentences as tensors; see the module docstring for the batch layout."""

    def __init__(self, sentences, items, pad, shuffle, seed):
        self.sentences, self.items = sentences, items
        self.pad, self.shuffle, self.seed = pad, shuffle, seed
        self.sizes = np.array([len(item["src_tokens"]) for item in items], dtype=np.int64)

    def __len__(self):
        return len(self.items)

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



@register_task("dependency_parsing", dataclass=DependencyParsingConfig)
class DependencyParsingTask(VocabularyInCheckpoint, FairseqTask):
    def __init__(self, cfg):
        super().__init__(cfg)
        check_choices(cfg, DependencyParsingConfig)
        if cfg.instance_sentences < 1:
            raise ConfigError(f"--instance-sentences must be >= 1, got {cfg.instance_sentences}")
        self.training_file = os.path.join(cfg.data, "train.conllu")
        self.excluded_labels = {label for label in cfg.eval_exclude_labels.split(",") if label}
        self.instances_stale = True

    @classmethod
    def setup_task(cls, cfg, from_checkpoint=False, **kwargs):
        task = cls(cfg)
        if not from_checkpoint:  # training: a bad training file stops fairseq-train before anything is built
            task.vocabulary()
        return task

    @cached_property
    def train_sentences(self):
        sentences = self.read_training_file(read_conllu)
        logger.info("train.conllu: %d sentences, %d words", len(sentences), sum(len(s.heads) for s in sentences))
        return sentences

    def build_vocabulary(self):
        counts = Counter(word for s in self.train_sentences for word in getattr(s, self.cfg.input_field))
        words = Dictionary()
        words.add_symbol(ROOT)
        for word, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
            if count >= self.cfg.min_word_count:
                words.add_symbol(word, count)
        return vocabulary(words, sorted({label for s in self.train_sentences for label in s.labels}))

    @property
    def dictionary(self):
        return self.vocabulary().words

    @property
    def root_index(self):
        return self.dictionary.index(ROOT)

    def tensorize(self, sentence):
        words, _, label_index = self.vocabulary()
        return {
            "src_tokens": torch.tensor([words.index(w) for w in [ROOT] + getattr(sentence, self.cfg.input_field)]),
            "heads": torch.tensor([-1] + sentence.heads),
            "labels": torch.tensor([-1] + [label_index.get(label, -1) for label in sentence.labels]),
            "punct": torch.tensor([False] + [is_punctuation(w) for w in sentence.form]),
            "scored": torch.tensor([False] + [label not in self.excluded_labels for label in sentence.labels]),
        }

    def load_dataset(self, split, combine=False, **kwargs):
        path = os.path.join(self.cfg.data, f"{split}.conllu")
        sentences = self.train_sentences if split == "train" else read_conllu(path)
        self.datasets[split] = self.dataset_of(sentences, path, shuffle=split == "train")
        return self.datasets[split]

    def dataset_of(self, sentences, path, shuffle=False):
        """A dataset of ``sentences`` (read from ``path``, named in errors), e.g. new input to parse."""
        for s in sentences:
            if len(s.heads) + 1 > self.cfg.max_positions:
                raise ConfigError(
                    f"{path}:{s.line}: sentence {s.name} has {len(s.heads)} words, more than --max-positions "
                    f"{self.cfg.max_positions} allows (words + 1 for the root); raise --max-positions"
                )
        items = [self.tensorize(s) for s in sentences]
        return DependencyDataset(sentences, items, self.dictionary.pad(), shuffle, self.cfg.seed)

    # --- instance set ---------------------------------------------------------------------------

    def training_items(self):
        if "train" not in self.datasets:
            self.load_dataset("train")
        return self.datasets["train"]

    def encode_instances(self, model, indices):
        """Gold edges of the training sentences ``indices``, encoded in eval mode (constants)."""
        dataset = self.training_items()
        device = next(model.parameters()).device
        was_training = model.training
        model.eval()
        parts = []
        with torch.no_grad():
            for start in range(0, len(indices), ENCODE_BATCH):
                batch = dataset.collater([dataset[int(i)] for i in indices[start:start + ENCODE_BATCH]])
                parts.append(model.gold_edges(on_device(batch, device)))
        model.train(was_training)
        return {key: torch.cat([part[key] for part in parts]) for key in parts[0]}

    def sample_instance_indices(self, batch_ids, update_num):
        pool = np.setdiff1d(np.arange(len(self.train_sentences)), batch_ids.cpu().numpy())
        if len(pool) == 0:
            raise ConfigError("instance-based heads need training sentences outside the batch; lower --batch-size/--max-tokens")
        rng = np.random.default_rng([self.cfg.seed, update_num])
        return rng.choice(pool, size=min(self.cfg.instance_sentences, len(pool)), replace=False)

    def train_step(self, sample, model, criterion, optimizer, update_num, ignore_grad=False):
        if getattr(model, "uses_instances", False):
            indices = self.sample_instance_indices(sample["id"], update_num)
            model.set_instances(**self.encode_instances(model, indices))
            self.instances_stale = True
        return super().train_step(sample, model, criterion, optimizer, update_num, ignore_grad)

    def prepare_for_inference(self, model):
        """Put the whole training set in the model's instance memory when training changed the model."""
        if getattr(model, "uses_instances", False) and (self.instances_stale or not model.has_training_instances):
            model.set_instances(**self.encode_instances(model, np.arange(len(self.train_sentences))))
            model.has_training_instances = True
            self.instances_stale = False

    def valid_step(self, sample, model, criterion):
        self.prepare_for_inference(model)
        return super().valid_step(sample, model, criterion)

    # --- explanations ---------------------------------------------------------------------------

    def describe_training_edge(self, sentence_index, dependent):
        s = self.train_sentences[sentence_index]
        head = s.heads[dependent - 1]
        return {"train_sentence": s.name, "dependent": dependent, "word": s.form[dependent - 1], "head": head,
                "head_word": s.form[head - 1] if head else ROOT, "label": s.labels[dependent - 1]}

    def explain(self, model, dataset, top_k, batch_size=32):
        """The report of ``fairseq-plugins-explain``: each predicted arc of ``dataset`` with the ``top_k``
        training edges that contribute most to its arc score, and (instance label head) the ``top_k``
        training edges most similar to it in the label space.

        ``{"summary": {...}, "predictions": [...]}``; a prediction: dependent and predicted head and
        label (with the gold ones), ``arc_score``, ``explained_score`` (the sum of EVERY training
        edge's contribution, which equals the arc score), ``top``: training edges (sentence,
        dependent, head, words, label) by contribution, and ``label_top``: by label-space similarity.
        Summary, in percent of the predicted arcs: ``plausibility``, whose most similar training edge
        in the label space carries the predicted label; ``arc_plausibility``, whose largest arc
        contribution comes from a training edge with the predicted label; ``label_prior``, the same
        for a training edge drawn at random (the mean training frequency of the predicted labels).
        """
        if model.cfg.arc_head != "instance":
            raise ConfigError("explanations need a model trained with --arc-head instance (a weight-based arc "
                              "scorer has no training edges to point to)")
        model.eval()
        self.prepare_for_inference(model)
        scorer, memory = model.arc_scorer, model.arc_memory
        with_labels = model.cfg.label_head == "instance"
        memory_ids = memory.ids.tolist()

        def described(indices, values, key):
            return [{**self.describe_training_edge(*memory_ids[j]), key: v} for v, j in zip(values, indices)]

        predictions = []
        device = next(model.parameters()).device
        with torch.no_grad():
            for batch in batches_in_index_order(dataset, batch_size):
                batch = on_device(batch, device)
                arc_scores, extra = model(**batch["net_input"])
                heads, labels = model.parse(arc_scores, extra, batch["net_input"]["src_lengths"])
                rows, dependents = (heads >= 0).nonzero(as_tuple=True)
                edges = model.arc_edges(extra, heads)[rows, dependents]
                explained = scorer.contributions(edges, memory).sum(1).tolist()
                top, indices = scorer.top_contributions(edges, memory, top_k)
                if with_labels:
                    similar, similar_indices = model.label_memory.top_k(model.label_edges(extra, heads)[rows, dependents], top_k)
                for q, (row, dependent) in enumerate(zip(rows.tolist(), dependents.tolist())):
                    s = dataset.sentences[int(batch["id"][row])]
                    head = int(heads[row, dependent])
                    prediction = {
                        "sentence": s.name, "dependent": dependent, "word": s.form[dependent - 1],
                        "head": head, "head_word": s.form[head - 1] if head else ROOT,
                        "label": self.labels[int(labels[row, dependent])],
                        "gold_head": s.heads[dependent - 1], "gold_label": s.labels[dependent - 1],
                        "arc_score": float(arc_scores[row, dependent, head]), "explained_score": explained[q],
                        "top": described(indices[q].tolist(), top[q].tolist(), "contribution"),
                    }
                    if with_labels:
                        prediction["label_top"] = described(similar_indices[q].tolist(), similar[q].tolist(), "similarity")
                    predictions.append(prediction)
        label_counts = Counter(label for s in self.train_sentences for label in s.labels)
        count = max(len(predictions), 1)

        def agreeing(key):
            return 100.0 * sum(p[key][0]["label"] == p["label"] for p in predictions) / count

        summary = {"predicted_arcs": len(predictions), "similarity": model.cfg.similarity, "top_k": top_k,
                   "training_edges": len(memory)}
        if with_labels:
            summary["plausibility"] = agreeing("label_top")
        summary["arc_plausibility"] = agreeing("top")
        summary["label_prior"] = 100.0 * sum(label_counts[p["label"]] for p in predictions) / sum(label_counts.values()) / count
        return {"summary": summary, "predictions": predictions}

    @staticmethod
    def explanation_lines(report, max_items):
        """Printable lines of ``explain``'s report: the first ``max_items`` predictions (-1: all), then the summary."""
        shown = report["predictions"] if max_items < 0 else report["predictions"][:max_items]
        for p in shown:
            yield (f"{p['sentence']} {p['dependent']} {p['word']!r} <-{p['label']}- {p['head']} {p['head_word']!r}  "
                   f"arc score {p['arc_score']:.4f} (gold: {p['gold_head']} {p['gold_label']})")
            for rank, edge in enumerate(p["top"], 1):
                yield (f"    {rank}. {edge['contribution']:+.4e}  {edge['label']:<10} train {edge['train_sentence']} "
                       f"{edge['dependent']} {edge['word']!r} <- {edge['head']} {edge['head_word']!r}")
            for rank, edge in enumerate(p.get("label_top", []), 1):
                yield (f"    label {rank}. {edge['similarity']:+.4f}  {edge['label']:<10} train {edge['train_sentence']} "
                       f"{edge['dependent']} {edge['word']!r} <- {edge['head']} {edge['head_word']!r}")
        summary = report["summary"]
        label_space = (f"plausibility {summary['plausibility']:.2f}% (most similar training edge in the label space "
                       f"has the predicted label), " if "plausibility" in summary else "")
        yield (f"{summary['predicted_arcs']} predicted arcs, {summary['training_edges']} training edges "
               f"({summary['similarity']}): {label_space}arc plausibility {summary['arc_plausibility']:.2f}% (largest "
               f"arc contribution from an edge with the predicted label), label prior {summary['label_prior']:.2f}%")

    def max_positions(self):
        return self.cfg.max_positions

    @property
    def source_dictionary(self):
        return self.dictionary

    @property
    def target_dictionary(self):
        return self.dictionary
