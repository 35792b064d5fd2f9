"""``dependency_parsing``: CoNLL-U treebanks, batches with ``id``s, UAS/LAS and well-formedness.

Data: ``DATA/train.conllu``, ``DATA/valid.conllu`` and (optionally) ``DATA/test.conllu``, read by
``data/conllu_treebank.py`` (one-line errors for malformed lines and gold trees), which also gives
the batch layout.

Vocabulary (built from ``train.conllu`` when training starts, and carried by every checkpoint, so
evaluating one maps words and labels as training did: ``data/vocabulary.py``): ``--input-field``
(form, lemma or upos) values seen at least ``--min-word-count`` times in training; the rest, and
every unseen word at test time, map to ``<unk>``, which the training singletons teach; with
``--word-embeddings FILE``, every word of FILE too, with its vector (as NER:
``InstanceSetTask.word_vocabulary``). Labels:
those of the training data; a valid/test label never seen in training counts as wrong (LAS) and is
left out of the loss.

Metrics (logged by fairseq-train's validation and fairseq-validate, percent): ``uas``/``las``
without punctuation (a word is punctuation when every character is in Unicode category P, SuPar's
convention), ``uas_punct``/``las_punct`` with it, ``well_formed`` (sentences whose decoded heads
are a tree), and ``las_ud``: LAS as the CoNLL 2018 shared task's evaluator computes it (punctuation
included, labels compared by their universal relation, the part before ``:``). LAS counts a label only on a word whose head is right. ``--eval-exclude-labels ig``
leaves the words with those gold labels out of every metric (the Turkish treebank's inflectional
groups).

Instance-based heads (``--arc-head``/``--label-head instance``): the instance-set protocol of
``tasks/instance_sets.py``: each training step scores against the gold edges of
``--instance-sentences`` sampled training sentences, evaluation against those of the whole
training split.
"""

from collections import Counter
from dataclasses import dataclass, field

import torch

from fairseq.tasks import register_task

from fairseq_plugins.data.conllu_treebank import INPUT_FIELDS, ROOT, DependencyDataset, read_conllu
from fairseq_plugins.data.vocabulary import vocabulary
from fairseq_plugins.errors import ConfigError
from fairseq_plugins.options import choice_field
from fairseq_plugins.tasks.instance_sets import InstanceSetConfig, InstanceSetTask


@dataclass
class DependencyParsingConfig(InstanceSetConfig):
    data: str = field(default=".", metadata={"help": "directory with train.conllu, valid.conllu (and test.conllu)"})
    input_field: str = choice_field("form", INPUT_FIELDS, "CoNLL-U column the encoder reads")
    min_word_count: int = field(
        default=2, metadata={"help": "training count below which a word maps to <unk> (which it then teaches)"}
    )
    max_positions: int = field(default=512, metadata={"help": "longest sentence in words, plus one for the root"})
    eval_exclude_labels: str = field(
        default="", metadata={"help": "comma-separated gold labels whose words every metric leaves out (e.g. ig)"}
    )


@register_task("dependency_parsing", dataclass=DependencyParsingConfig)
class DependencyParsingTask(InstanceSetTask):
    suffix = ".conllu"
    config = DependencyParsingConfig

    def __init__(self, cfg):
        super().__init__(cfg)
        self.excluded_labels = {label for label in cfg.eval_exclude_labels.split(",") if label}

    def read(self, path):
        return read_conllu(path)

    def build_vocabulary(self):
        counts = Counter(word for s in self.train_sentences for word in getattr(s, self.cfg.input_field))
        words = self.word_vocabulary(counts, extra_symbols=[ROOT], min_count=self.cfg.min_word_count)
        return vocabulary(words, sorted({label for s in self.train_sentences for label in s.labels}))

    @property
    def root_index(self):
        return self.words.index(ROOT)

    def dataset_of(self, sentences, path, shuffle=False):
        """A dataset of ``sentences`` (read from ``path``, named in errors), e.g. new input to parse."""
        for s in sentences:
            if len(s.heads) + 1 > self.cfg.max_positions:
                raise ConfigError(
                    f"{path}:{s.line}: sentence {s.name} has {len(s.heads)} words, more than --max-positions "
                    f"{self.cfg.max_positions} allows (words + 1 for the root); raise --max-positions"
                )
        return DependencyDataset(sentences, self.words, self.label_index, self.cfg.input_field, self.excluded_labels,
                                 shuffle, self.cfg.seed)

    # --- explanations ---------------------------------------------------------------------------

    def describe_training_edge(self, sentence_index, dependent):
        s = self.train_sentences[sentence_index]
        head = s.heads[dependent - 1]
        return {"train_sentence": s.name, "dependent": dependent, "word": s.form[dependent - 1], "head": head,
                "head_word": s.form[head - 1] if head else ROOT, "label": s.labels[dependent - 1]}

    def explain(self, model, dataset, top_k, batch_size=32, chunk_size=4096):
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

        Streamed: the (predicted arcs x training edges) similarities are summed and ranked
        ``chunk_size`` training edges at a time, never held whole (English EWT: about 450 MB a batch).
        """
        if model.cfg.arc_head != "instance":
            raise ConfigError("explanations need a model trained with --arc-head instance (a weight-based arc "
                              "scorer has no training edges to point to)")
        model.eval()
        scorer, memory = model.arc_scorer, model.arc_memory
        with_labels = model.cfg.label_head == "instance"

        def described(memory, indices, values, key):
            ids = memory.ids[indices].tolist()
            return [{**self.describe_training_edge(*ids[j]), key: v} for j, v in enumerate(values)]

        predictions = []
        with torch.no_grad():
            for batch in self.batches(model, dataset, batch_size):  # (--inference-sentences N: memories per batch)
                arc_scores, extra = model(**batch["net_input"])
                heads, labels = model.parse(arc_scores, extra, batch["net_input"]["src_lengths"])
                rows, dependents = (heads >= 0).nonzero(as_tuple=True)
                edges = model.arc_edges(extra, heads)[rows, dependents]
                explained = scorer.explained_scores(edges, memory, chunk_size).tolist()
                top, indices = scorer.top_contributions(edges, memory, top_k, chunk_size)
                if with_labels:
                    label_edges = model.label_edges(extra, heads)[rows, dependents]
                    similar, similar_indices = model.label_memory.top_k(label_edges, top_k, chunk_size)
                for q, (row, dependent) in enumerate(zip(rows.tolist(), dependents.tolist())):
                    s = dataset.sentences[int(batch["id"][row])]
                    head = int(heads[row, dependent])
                    prediction = {
                        "sentence": s.name, "dependent": dependent, "word": s.form[dependent - 1],
                        "head": head, "head_word": s.form[head - 1] if head else ROOT,
                        "label": self.labels[int(labels[row, dependent])],
                        "gold_head": s.heads[dependent - 1], "gold_label": s.labels[dependent - 1],
                        "arc_score": float(arc_scores[row, dependent, head]), "explained_score": explained[q],
                        "top": described(memory, indices[q], top[q].tolist(), "contribution"),
                    }
                    if with_labels:
                        prediction["label_top"] = described(model.label_memory, similar_indices[q], similar[q].tolist(),
                                                            "similarity")
                    predictions.append(prediction)
        label_counts = Counter(label for s in self.train_sentences for label in s.labels)
        count = max(len(predictions), 1)

        def agreeing(key):
            return 100.0 * sum(p[key][0]["label"] == p["label"] for p in predictions) / count

        summary = {"predicted_arcs": len(predictions), "similarity": model.cfg.similarity, "top_k": top_k,
                   "training_edges": len(memory), "inference_sentences": self.cfg.inference_sentences}
        if with_labels:
            summary["plausibility"] = agreeing("label_top")
        summary["arc_plausibility"] = agreeing("top")
        summary["label_prior"] = 100.0 * sum(label_counts[p["label"]] for p in predictions) / sum(label_counts.values()) / count
        return {"summary": summary, "predictions": predictions}

    @property
    def target_dictionary(self):
        return self.words
