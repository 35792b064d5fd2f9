"""The words and labels of a training file, carried by every checkpoint of a task that reads one."""

import hashlib
import logging
from collections import namedtuple

from fairseq.data import Dictionary

from fairseq_plugins.data.word_vectors import PretrainedWords
from fairseq_plugins.errors import ConfigError

logger = logging.getLogger(__name__)


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


Vocabulary = namedtuple("Vocabulary", "words labels label_index")


def vocabulary(words, labels):
    """``Vocabulary(words: a fairseq Dictionary, labels: list, label_index: {label: index})``."""
    return Vocabulary(words, list(labels), {label: index for index, label in enumerate(labels)})


class VocabularyInCheckpoint:
    """Task mixin: the checkpoint carries the task's words and labels, so evaluating it maps them as
    training did whatever ``DATA``'s training file now holds.

    fairseq saves ``task.state_dict()`` in every checkpoint (``task_state``) and hands it to
    ``task.load_state_dict`` before it builds the model (fairseq-validate, and every command that
    loads through ``checkpoint_utils.load_model_ensemble_and_task``). Here that state is the word
    list, the label list and the sha256 of the training file; with pretrained vectors
    (``data/word_vectors.PretrainedWords``) also where the pretrained words start and the sha256 of
    the vector file they came from (a record: the model's state dict holds the vectors, so
    evaluating never reads that file). A task set up from a checkpoint reads
    its training file only when the model needs the training sentences (an instance head's memory,
    explanations), and then it must be the file the checkpoint was trained on: a one-line error
    names the file otherwise. Without the state (an older checkpoint), the vocabulary is rebuilt
    from the training file as it was then.

    Subclasses set ``training_file`` (its path) and define ``build_vocabulary()`` (from the training
    file, read with ``read_training_file``, which records ``training_sha256``).
    """

    _vocabulary = None
    training_sha256 = None  # of the training file as this task read it
    word_vectors_sha256 = None  # of the vector file the vocabulary was built on
    trained_on = None  # sha256 of the training file of the checkpoint being evaluated

    def vocabulary(self):
        if self._vocabulary is None:
            self._vocabulary = self.build_vocabulary()
        return self._vocabulary

    @property
    def labels(self):
        return self.vocabulary().labels

    @property
    def label_index(self):
        return self.vocabulary().label_index

    def read_training_file(self, read):
        """``read(training_file)``, after checking that it is the file the loaded checkpoint was trained on."""
        result = read(self.training_file)
        self.training_sha256 = file_sha256(self.training_file)
        if self.trained_on is not None and self.training_sha256 != self.trained_on:
            raise ConfigError(
                f"{self.training_file} is not the file this checkpoint was trained on (sha256 {self.training_sha256[:12]}, "
                f"trained on {self.trained_on[:12]}): its instance memory is the training sentences; evaluate with that file")
        return result

    def state_dict(self):
        words, labels, _ = self.vocabulary()
        return {"words": list(words.symbols), "labels": list(labels), "training_sha256": self.training_sha256,
                "first_pretrained": getattr(words, "first_pretrained", None),
                "word_vectors_sha256": self.word_vectors_sha256}

    def load_state_dict(self, state):
        if "words" not in state:
            logger.warning("the checkpoint carries no vocabulary (written before it did): words and labels are "
                           "rebuilt from %s", self.training_file)
            return
        first_pretrained = state.get("first_pretrained")
        words = Dictionary() if first_pretrained is None else PretrainedWords()
        for symbol in state["words"][len(words):]:
            words.add_symbol(symbol)
        words.first_pretrained = first_pretrained
        self._vocabulary = vocabulary(words, state["labels"])
        self.trained_on = state["training_sha256"]
        self.word_vectors_sha256 = state.get("word_vectors_sha256")
