"""The task side of the instance-set protocol: span NER, dependency parsing and any instance-based method.

An instance-based model scores by similarity to training instances (``models/instance_based.py``:
the model side). The task decides which training sentences its memories hold and when:

- training: before each step, ``--instance-sentences`` K training sentences outside the batch,
  drawn without replacement by numpy's ``default_rng([--seed, update number])`` (a resumed run
  draws what an uninterrupted one would), in index order;
- scoring (fairseq-train's validation, fairseq-validate, ``predict``, ``explain``, the hub):
  ``inference_sentences()``, by ``--inference-sentences``: ``0`` (the default) every training
  sentence, exact (what the parsing paper's equations sum over); ``N`` N training sentences drawn
  for each scored batch by ``default_rng([--seed, *the batch's ids])`` (the authors' NER code
  draws K = 50 per evaluation batch): a batch gets the same N whenever and in whatever order it
  is scored; the hub, which scores without batch ids, draws once by ``default_rng([--seed])``.
  Either way encoded by the weights as they are.

Cost of the two modes: the whole training split is encoded once per scoring and every query is
compared with all of its instances (for CoNLL-2003's dev spans against 1.2M training spans, about
3.6e11 similarity terms); N sentences are encoded again for every batch and each query meets only
their instances. docs/instance_parsing.md has the measured times and memory.

Staleness, one rule: a memory filled for inference serves until the task's next training step.
The task counts its training steps and a model remembers the count its memory was filled at, so
every model the task scores (the trained one, an EMA copy, an ensemble member) is refilled when
training has moved on since.

The memory is never stored in a checkpoint: a checkpoint being evaluated reads the training file
for it, and only the file it was trained on (``data/vocabulary.py``, whose sha256 check the task
inherits).

A subclass (one per file format) sets ``suffix`` (its files are ``DATA/{split}{suffix}``) and
defines ``read(path) -> sentences`` (each with its first ``line``), ``build_vocabulary()`` (from
``self.train_sentences``) and ``dataset_of(sentences, path, shuffle)``; its config subclasses
``InstanceSetConfig`` (the protocol's options, the same for every such task, and
``--word-embeddings``) and adds ``data`` and ``max_positions``.

Words, the same way for every such task: ``word_vocabulary(counts)`` is the training words, or with
``--word-embeddings FILE`` every word of FILE plus the training words it lacks
(``data/word_vectors.py``), and ``build_model`` copies FILE's vectors in when training starts (a
checkpoint holds them), fixed under the model's ``--freeze-word-embeddings``.
"""

import logging
import os
from dataclasses import dataclass, field
from functools import cached_property
from typing import Optional

import numpy as np
from omegaconf import II

from fairseq.data import Dictionary
from fairseq.dataclass import FairseqDataclass
from fairseq.tasks import FairseqTask

from fairseq_plugins.data.sentences import batches_in_index_order, on_device
from fairseq_plugins.data.vocabulary import VocabularyInCheckpoint, file_sha256
from fairseq_plugins.data.word_vectors import pretrained_vocabulary
from fairseq_plugins.errors import ConfigError
from fairseq_plugins.models.token_encoders import init_word_embeddings
from fairseq_plugins.options import bounded_field, check_options

logger = logging.getLogger(__name__)

ENCODE_BATCH = 64  # training sentences per forward pass when the memories are filled


def instance_sentences_field(default):
    return bounded_field(default, ">= 1", "instance-based heads: K, the training sentences (outside the batch) sampled "
                         "for each training batch as the instances it is scored against")


@dataclass
class InstanceSetConfig(FairseqDataclass):
    instance_sentences: int = instance_sentences_field(32)
    inference_sentences: int = bounded_field(
        0, ">= 0", "instance-based heads when scoring (validation, test, predict, explain): 0 (the default): every "
        "training sentence's instances, exact; N: N training sentences drawn for each scored batch (seeded by "
        "--seed and the batch's ids; the authors' NER code draws 50)")
    seed: int = II("common.seed")
    word_embeddings: Optional[str] = field(default=None, metadata={
        "help": "text file of pretrained word vectors (GloVe, word2vec or fastText text format): its words plus the "
                "training words are the vocabulary, the vectors copied in when training starts"})


class InstanceSetTask(VocabularyInCheckpoint, FairseqTask):
    suffix = None  # of the data files: DATA/{train,valid,test}{suffix}
    config = InstanceSetConfig  # the subclass's own config class (its options are checked here, once)

    def __init__(self, cfg):
        super().__init__(cfg)
        check_options(cfg, self.config)
        self.training_file = os.path.join(cfg.data, f"train{self.suffix}")
        self.training_steps = 0

    @classmethod
    def setup_task(cls, cfg, from_checkpoint=False, **kwargs):
        task = cls(cfg)
        if not from_checkpoint:  # training: a bad training file stops fairseq-train before anything is built
            if not os.path.isdir(cfg.data):  # (a checkpoint carries its vocabulary: it may need no DATA)
                raise ConfigError(f"DATA {cfg.data!r} is not a directory (it must hold train{cls.suffix} and "
                                  f"valid{cls.suffix})")
            task.vocabulary()
        return task

    @cached_property
    def train_sentences(self):
        return self.read_training_file(self.read)

    @property
    def words(self):
        return self.vocabulary().words

    def word_vocabulary(self, counts, extra_symbols=(), min_count=1):
        """The word Dictionary of the training words ``counts`` (a Counter) seen ``min_count`` times or more:
        with ``--word-embeddings``, ``pretrained_vocabulary`` (the file's words plus these); otherwise these,
        most frequent first. ``extra_symbols`` (e.g. a parser's root) follow the specials."""
        counts = {word: count for word, count in counts.items() if count >= min_count}
        if self.cfg.word_embeddings:
            self.word_vectors_sha256 = file_sha256(self.cfg.word_embeddings)
            return pretrained_vocabulary(counts, self.cfg.word_embeddings, extra_symbols)
        words = Dictionary()
        for symbol in extra_symbols:
            words.add_symbol(symbol)
        for word, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
            words.add_symbol(word, count)
        return words

    def build_model(self, cfg, from_checkpoint=False):
        model = super().build_model(cfg, from_checkpoint)
        if not from_checkpoint:  # a checkpoint's state dict already holds the pretrained vectors
            init_word_embeddings(model.encoder, self.words, cfg)
        return model

    def load_dataset(self, split, combine=False, **kwargs):
        path = os.path.join(self.cfg.data, f"{split}{self.suffix}")
        sentences = self.train_sentences if split == "train" else self.read(path)
        self.datasets[split] = self.dataset_of(sentences, path, shuffle=split == "train")
        logger.info("%s: %d sentences", path, len(sentences))
        return self.datasets[split]

    def train_dataset(self):
        if "train" not in self.datasets:
            self.load_dataset("train")
        return self.datasets["train"]

    # --- the instance set -------------------------------------------------------------------------

    def sample_instance_sentences(self, batch_ids, update_num):
        """Indices of K training sentences outside the batch (``batch_ids``), in index order."""
        pool = np.setdiff1d(np.arange(len(self.train_dataset())), batch_ids.cpu().numpy())
        if len(pool) == 0:
            raise ConfigError("instance-based heads need training sentences outside the batch, and this batch holds "
                              "every one; lower --batch-size/--max-tokens")
        rng = np.random.default_rng([self.cfg.seed, update_num])
        return np.sort(rng.choice(pool, size=min(self.cfg.instance_sentences, len(pool)), replace=False))

    def inference_sentences(self, batch_ids=None):
        """Indices of the training sentences whose instances the memories hold when a model scores the batch
        whose ids (in its own split) are ``batch_ids``: every one (``--inference-sentences 0``), or N drawn for
        that batch (``default_rng([--seed, *sorted batch ids])``; ``[--seed]`` without ids), in index order."""
        every = np.arange(len(self.train_dataset()))
        drawn = self.cfg.inference_sentences
        if drawn == 0 or drawn >= len(every):
            return every
        key = [] if batch_ids is None else sorted(int(i) for i in batch_ids)
        return np.sort(np.random.default_rng([self.cfg.seed, *key]).choice(every, size=drawn, replace=False))

    def fill_memories(self, model, indices, purpose):
        train = self.train_dataset()
        device = next(model.parameters()).device
        batches = (on_device(train.collater([train[int(i)] for i in indices[start:start + ENCODE_BATCH]]), device)
                   for start in range(0, len(indices), ENCODE_BATCH))
        model.fill_memories(batches, (purpose, self.training_steps))

    def train_step(self, sample, model, criterion, optimizer, update_num, ignore_grad=False):
        self.training_steps += 1
        if model.uses_instances:
            self.fill_memories(model, self.sample_instance_sentences(sample["id"], update_num), "training")
        return super().train_step(sample, model, criterion, optimizer, update_num, ignore_grad)

    def prepare_for_inference(self, model, batch_ids=None):
        """Fill ``model``'s memories with ``inference_sentences(batch_ids)`` unless they hold those since the
        latest training step."""
        if not model.uses_instances:
            return
        sentences = self.inference_sentences(batch_ids)
        purpose = ("inference", "all" if len(sentences) == len(self.train_dataset()) else tuple(sentences.tolist()))
        if model.memory_filled_for != (purpose, self.training_steps):
            self.fill_memories(model, sentences, purpose)
            logger.log(logging.INFO if purpose[1] == "all" else logging.DEBUG, "instance memories: %s",
                       ", ".join(f"{name} {len(memory)}" for name, memory in model.instance_memories().items()))

    def valid_step(self, sample, model, criterion):
        self.prepare_for_inference(model, sample["id"])
        return super().valid_step(sample, model, criterion)

    def batches(self, model, dataset, batch_size):
        """``dataset``'s batches in index order on ``model``'s device, the model prepared to score each."""
        device = next(model.parameters()).device
        for batch in batches_in_index_order(dataset, batch_size):
            self.prepare_for_inference(model, batch["id"])
            yield on_device(batch, device)

    def max_positions(self):
        return self.cfg.max_positions

    @property
    def source_dictionary(self):
        return self.words
