"""``span_ner``: flat named-entity recognition over spans, from CoNLL-style files.

Data (``DATA``, the task's positional argument): ``train.conll``, ``valid.conll`` and (optional)
``test.conll``: one token per line, whitespace-separated columns, the token in the first column
and its tag in the last; a blank line ends a sentence; ``-DOCSTART-`` lines are skipped. Tags in
IOB1, IOB2 or BIOES (``--tag-scheme auto`` picks BIOES when a file has ``E-``/``S-`` tags, else
the IOB reading, which covers IOB1 and IOB2); entities become spans ``(start, end, type)``.

Vocabulary: the words and entity types of ``train.conll``, built when training starts and carried
by every checkpoint (``sentence_dataset.VocabularyInCheckpoint``; nothing is written into
``DATA``, which may be read-only). Words not in it (e.g. a test word never seen in training) map
to ``<unk>``; label 0 is the null label ``O`` (a span that is not an entity), then the entity
types. ``--word-embeddings FILE`` (GloVe's text format) fills the embeddings of dictionary words
when training starts; the checkpoint then holds them.

Batches::

    {"id": (B,) sentence index in its split,   "net_input": {"src_tokens": (B, T), "src_lengths": (B,)},
     "target": (B, T, L) gold label of span (i, i + w), -1 past the sentence end,
     "gold_tags": per sentence, the gold entities as IOB2 tags (entities longer than L included),
     "nsentences", "ntokens"}

Instance-based models (``model.needs_instances``): each training step gets
``sample["instances"]``, a batch of ``--instance-sentences`` training sentences drawn without
replacement from those outside the batch (seeded by ``--seed`` and the update number, so a
resumed run draws the same ones). Evaluation scores against every span of the whole training
split: the memory is rebuilt from ``train.conll`` with the current weights before each
validation (and once by fairseq-validate), never stored in the checkpoint; a checkpoint's
memory must come from the file it was trained on (its sha256 is in the checkpoint).

Evaluation (``criterions/span_ner.py``): seqeval's strict IOB2 precision, recall and F1
(micro, percent) of the greedy, non-overlapping decoding.
"""

import logging
import os
import re
from dataclasses import dataclass, field

import numpy as np
import torch
from omegaconf import II

from fairseq.data import Dictionary, data_utils
from fairseq.dataclass import FairseqDataclass
from fairseq.tasks import FairseqTask, register_task

from fairseq_plugins.cli.checkpoints import batches_in_index_order
from fairseq_plugins.errors import ConfigError
from fairseq_plugins.models.token_encoders import init_word_embeddings
from fairseq_plugins.modules.spans import (
    OUTSIDE, SCHEMES, decode, detect_scheme, label_grid, spans_to_iob2, tags_to_spans,
)
from fairseq_plugins.options import check_choices, choice_field
from fairseq_plugins.tasks.sentence_dataset import (LengthOrderedSentences, VocabularyInCheckpoint, on_device,
                                                     vocabulary)
from fairseq_plugins.tasks.text_input import numbered_lines

logger = logging.getLogger(__name__)

SPLITS = ("train", "valid", "test")
DOCSTART = "-DOCSTART-"
MEMORY_BATCH = 64  # sentences per forward pass when the memory is rebuilt


@dataclass
class SpanNerConfig(FairseqDataclass):
    data: str = field(default="", metadata={"help": "directory with train.conll, valid.conll[, test.conll]"})
    tag_scheme: str = choice_field("auto", SCHEMES, "tagging scheme of the files (auto: BIOES if E-/S- tags occur, else IOB)")
    max_span_length: int = field(default=6, metadata={"help": "longest candidate span L, in tokens"})
    instance_sentences: int = field(
        default=50, metadata={"help": "instance head: training sentences K whose spans form each batch's memory"}
    )
    max_positions: int = field(default=512, metadata={"help": "longest sentence, in tokens"})
    seed: int = II("common.seed")


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
    """Sentences as token ids with their gold span grids; see the module docstring for the batch layout."""

    def __init__(self, sentences, words, label_index, max_span_length, shuffle, seed):
        self.sentences = sentences
        self.tokens = [torch.tensor([words.index(w) for w in s.words], dtype=torch.long) for s in sentences]
        self.entities = [[(start, end, label_index[kind]) for start, end, kind in s.entities] for s in sentences]
        self.sizes = np.array([len(s.words) for s in sentences], dtype=np.int64)
        self.pad, self.max_span_length = words.pad(), max_span_length
        self.shuffle, self.seed = shuffle, seed

    def __len__(self):
        return len(self.sentences)

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



@register_task("span_ner", dataclass=SpanNerConfig)
class SpanNerTask(VocabularyInCheckpoint, FairseqTask):
    def __init__(self, cfg):
        super().__init__(cfg)
        self.training_file = os.path.join(cfg.data, "train.conll")

    @classmethod
    def setup_task(cls, cfg, from_checkpoint=False, **kwargs):
        check_choices(cfg, SpanNerConfig)
        if cfg.max_span_length < 1:
            raise ConfigError(f"--max-span-length must be >= 1 (got {cfg.max_span_length})")
        if cfg.instance_sentences < 1:
            raise ConfigError(f"--instance-sentences must be >= 1 (got {cfg.instance_sentences})")
        if not from_checkpoint and not os.path.isdir(cfg.data):  # a checkpoint carries its vocabulary
            raise ConfigError(f"DATA {cfg.data!r} is not a directory (it must hold train.conll and valid.conll)")
        task = cls(cfg)
        if not from_checkpoint:  # training: a bad training file stops fairseq-train before anything is built
            task.vocabulary()
        return task

    def build_vocabulary(self):
        train = self.read_training_file(self.read_split)
        words = Dictionary()
        for sentence in train:
            for word in sentence.words:
                words.add_symbol(word)
        words.finalize()
        labels = [OUTSIDE] + sorted({kind for sentence in train for _, _, kind in sentence.entities})
        logger.info("span_ner: %d words, labels %s", len(words), " ".join(labels))
        return vocabulary(words, labels)

    @property
    def words(self):
        return self.vocabulary().words

    def build_model(self, cfg, from_checkpoint=False):
        model = super().build_model(cfg, from_checkpoint)
        if not from_checkpoint:  # a checkpoint's state dict already holds the pretrained vectors
            init_word_embeddings(model.encoder, self.words, cfg)
        return model

    def read_split(self, path):
        return read_conll(path, self.cfg.tag_scheme)

    def load_dataset(self, split, combine=False, **kwargs):
        path = os.path.join(self.cfg.data, f"{split}.conll")
        sentences = self.read_training_file(self.read_split) if split == "train" else self.read_split(path)
        self.datasets[split] = self.dataset_of(sentences, path, shuffle=split == "train")
        logger.info("%s: %d sentences, %d entities", path, len(sentences), sum(len(s.entities) for s in sentences))
        return self.datasets[split]

    def dataset_of(self, sentences, path, shuffle=False):
        """A dataset of ``sentences`` (read from ``path``, named in errors), e.g. new text to tag."""
        for sentence in sentences:
            if len(sentence.words) > self.cfg.max_positions:
                raise ConfigError(f"{path}:{sentence.line}: a sentence of {len(sentence.words)} tokens is longer "
                                  f"than --max-positions {self.cfg.max_positions}")
            for _, _, kind in sentence.entities:
                if kind not in self.label_index:
                    raise ConfigError(f"{path}:{sentence.line}: entity type {kind!r} is not one the model was trained "
                                      f"on (the types of train.conll: {', '.join(self.labels[1:])})")
        return SpanNerDataset(sentences, self.words, self.label_index, self.cfg.max_span_length,
                              shuffle=shuffle, seed=self.cfg.seed)

    def train_dataset(self):
        if "train" not in self.datasets:
            self.load_dataset("train")
        return self.datasets["train"]

    def sample_instances(self, batch_ids, update_num, device):
        """A collated batch of K training sentences outside ``batch_ids``, seeded by the update number."""
        train = self.train_dataset()
        candidates = np.setdiff1d(np.arange(len(train)), batch_ids.cpu().numpy())
        if len(candidates) == 0:
            raise ConfigError("--span-head instance: every training sentence is in the batch, none is left as "
                              "instances; lower --batch-size")
        rng = np.random.default_rng([self.cfg.seed, update_num])
        chosen = rng.choice(candidates, size=min(self.cfg.instance_sentences, len(candidates)), replace=False)
        batch = train.collater([train[int(i)] for i in np.sort(chosen)])
        return on_device(batch, device)

    def train_step(self, sample, model, criterion, optimizer, update_num, ignore_grad=False):
        if model.needs_instances:
            sample["instances"] = self.sample_instances(sample["id"], update_num, sample["target"].device)
        return super().train_step(sample, model, criterion, optimizer, update_num, ignore_grad)

    def fill_memory(self, model):
        """Every span of the training split, encoded by ``model`` as it is now, into its memory."""
        device = next(model.parameters()).device
        batches = (on_device(batch, device) for batch in batches_in_index_order(self.train_dataset(), MEMORY_BATCH))
        model.fill_memory(batches)
        logger.info("instance memory: %d training spans", len(model.memory))

    def ready(self, model):
        """Make ``model`` ready to score: an instance model needs a memory built from its current weights."""
        if model.needs_instances and not len(model.memory):
            self.fill_memory(model)

    def begin_valid_epoch(self, epoch, model):
        if model.needs_instances:
            model.memory.clear()  # the weights changed since it was filled

    def valid_step(self, sample, model, criterion):
        self.ready(model)
        return super().valid_step(sample, model, criterion)

    @torch.no_grad()
    def predict(self, model, dataset, batch_size=32):
        """Yield ``(batch, log_probs (B, T, L, C), decoded spans per sentence)`` for the whole split,
        in dataset order; decoded spans are ``(start, end, label index, score)``."""
        self.ready(model)
        device = next(model.parameters()).device
        for batch in batches_in_index_order(dataset, batch_size):
            batch = on_device(batch, device)
            log_probs, _ = model(**batch["net_input"])
            yield batch, log_probs, decode(log_probs, batch["net_input"]["src_lengths"])

    def predicted_tags(self, decoded, length):
        return spans_to_iob2([(start, end, self.labels[label]) for start, end, label, _ in decoded], length)

    def explain(self, model, dataset, top_k, batch_size=32):
        """The report of ``fairseq-plugins-explain``: every predicted entity with the ``top_k`` training
        spans most similar to it (sentence id, text, label, score), and plausibility: the share of
        predicted entities whose most similar training span carries the predicted label, beside the
        label prior (the share expected if that span were drawn at random from the training
        entities: ``sum_y p(y) * share of predictions labelled y``)."""
        if not model.needs_instances:
            raise ConfigError("explanations need an instance-based model (--span-head instance); this checkpoint "
                              "has a classifier head")
        train = self.train_dataset()
        memory = model.memory
        predictions = []
        for batch, _, decoded in self.predict(model, dataset, batch_size):
            spans = [(row, start, end, label) for row, sentence in enumerate(decoded) for start, end, label, _ in sentence]
            if not spans:
                continue
            queries = model.query_vectors(batch["net_input"]["src_tokens"], spans)
            scores, indices = memory.top_k(queries, top_k)
            for (row, start, end, label), span_scores, span_indices in zip(spans, scores.tolist(), indices.tolist()):
                sentence_id = int(batch["id"][row])
                neighbours = []
                for score, index in zip(span_scores, span_indices):
                    train_id, train_start, train_end = memory.ids[index].tolist()
                    neighbours.append({
                        "sentence": train_id, "start": train_start, "end": train_end,
                        "text": " ".join(train.sentences[train_id].words[train_start:train_end + 1]),
                        "label": self.labels[memory.labels[index]], "score": round(score, 4),
                    })
                predictions.append({
                    "sentence": sentence_id, "start": start, "end": end,
                    "text": " ".join(dataset.sentences[sentence_id].words[start:end + 1]),
                    "label": self.labels[label], "neighbours": neighbours,
                })
        entity_labels = memory.labels[memory.labels != 0]
        prior = torch.bincount(entity_labels, minlength=len(self.labels)).double() / max(len(entity_labels), 1)
        agree = sum(p["neighbours"][0]["label"] == p["label"] for p in predictions)
        expected = sum(prior[self.label_index[p["label"]]].item() for p in predictions)
        count = max(len(predictions), 1)
        summary = {"predicted_entities": len(predictions), "top_k": top_k, "memory_spans": len(memory),
                   "plausibility": 100.0 * agree / count, "label_prior": 100.0 * expected / count}
        return {"summary": summary, "predictions": predictions}

    @staticmethod
    def explanation_lines(report, max_items):
        """Printable lines of ``explain``'s report: the first ``max_items`` predictions (-1: all), then the summary."""
        shown = report["predictions"] if max_items < 0 else report["predictions"][:max_items]
        for prediction in shown:
            yield f"S-{prediction['sentence']} [{prediction['start']}, {prediction['end']}] {prediction['text']!r} -> {prediction['label']}"
            for rank, n in enumerate(prediction["neighbours"], 1):
                yield f"    {rank}. {n['score']:9.4f}  {n['label']:<12} train S-{n['sentence']} [{n['start']}, {n['end']}] {n['text']!r}"
        summary = report["summary"]
        yield (f"{summary['predicted_entities']} predicted entities, memory of {summary['memory_spans']} training spans: "
               f"plausibility {summary['plausibility']:.2f}% (top-1 training span has the predicted label), "
               f"label prior {summary['label_prior']:.2f}%")

    def max_positions(self):
        return self.cfg.max_positions

    @property
    def source_dictionary(self):
        return self.words

    @property
    def target_dictionary(self):
        return None
