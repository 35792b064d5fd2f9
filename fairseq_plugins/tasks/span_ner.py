"""``span_ner``: flat named-entity recognition over spans, from CoNLL-style files.

Data (``DATA``, the task's positional argument): ``train.conll``, ``valid.conll`` and (optional)
``test.conll``, read by ``data/conll_ner.py`` (one token and its tag per line; ``--tag-scheme``
IOB1, IOB2 or BIOES, ``auto`` by default), which also gives the batch layout.

Vocabulary: the words and entity types of ``train.conll``, built when training starts and carried
by every checkpoint (``data/vocabulary.py``; nothing is written into ``DATA``, which may be
read-only). Words not in it (e.g. a test word never seen in training) map to ``<unk>``; label 0 is
the null label ``O`` (a span that is not an entity), then the entity types. With ``--word-embeddings
FILE`` (GloVe, word2vec or fastText text) the vocabulary is every word of FILE (its vectors fixed
under ``--freeze-word-embeddings``, as the authors') plus the training words it lacks (trainable):
``data/word_vectors.py``; a test word GloVe knows keeps its vector. The checkpoint then holds the
vectors and the vocabulary: evaluating never reads FILE.

Instance-based models (``--span-head instance``): the instance-set protocol of
``tasks/instance_sets.py``: each training step scores against every span (null ones included) of
``--instance-sentences`` sampled training sentences, evaluation against every span of the whole
training split.

Evaluation (``criterions/span_ner.py``): seqeval's strict IOB2 precision, recall and F1
(micro, percent) of the greedy, non-overlapping decoding.
"""

import logging
from collections import Counter
from dataclasses import dataclass, field

import torch

from fairseq.tasks import register_task

from fairseq_plugins.data.conll_ner import SpanNerDataset, read_conll
from fairseq_plugins.data.vocabulary import vocabulary
from fairseq_plugins.errors import ConfigError
from fairseq_plugins.modules.spans import OUTSIDE, SCHEMES, decode, spans_to_iob2
from fairseq_plugins.options import bounded_field, choice_field
from fairseq_plugins.tasks.instance_sets import InstanceSetConfig, InstanceSetTask, instance_sentences_field

logger = logging.getLogger(__name__)


@dataclass
class SpanNerConfig(InstanceSetConfig):
    data: str = field(default="", metadata={"help": "directory with train.conll, valid.conll[, test.conll]"})
    tag_scheme: str = choice_field("auto", SCHEMES, "tagging scheme of the files (auto: BIOES if E-/S- tags occur, else IOB)")
    max_span_length: int = bounded_field(6, ">= 1", "longest candidate span L, in tokens")
    instance_sentences: int = instance_sentences_field(50)
    max_positions: int = field(default=512, metadata={"help": "longest sentence, in tokens"})


@register_task("span_ner", dataclass=SpanNerConfig)
class SpanNerTask(InstanceSetTask):
    suffix = ".conll"
    config = SpanNerConfig

    def read(self, path):
        return read_conll(path, self.cfg.tag_scheme)

    def build_vocabulary(self):
        words = self.word_vocabulary(Counter(word for sentence in self.train_sentences for word in sentence.words))
        labels = [OUTSIDE] + sorted({kind for sentence in self.train_sentences for _, _, kind in sentence.entities})
        logger.info("span_ner: %d words, labels %s", len(words), " ".join(labels))
        return vocabulary(words, labels)

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

    @torch.no_grad()
    def predict(self, model, dataset, batch_size=32):
        """Yield ``(batch, log_probs (B, T, L, C), decoded spans per sentence)`` for the whole split,
        in dataset order; decoded spans are ``(start, end, label index, score)``."""
        for batch in self.batches(model, dataset, batch_size):
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
        if not model.uses_instances:
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

    @property
    def target_dictionary(self):
        return None
