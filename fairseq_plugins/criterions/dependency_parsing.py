"""``dependency_parsing``: head and label cross entropy; UAS/LAS and well-formedness in validation.

Loss (summed over words; fairseq reports it per word, in bits, beside ``arc_loss`` and
``label_loss``)::

    - log softmax_h arc(d, h)[gold head]  -  log softmax_r label_r(d, gold head)[gold label]

the label term taken at the gold head, as biaffine parsers train. A word whose gold label the
instance set lacks (an instance label head trained on K sampled sentences cannot score it) or
that training never saw adds no label term.

Outside training, every batch is also decoded (the model's ``--decoder``) and scored, for the
metrics the task documents: ``uas``, ``las`` (punctuation excluded), ``uas_punct``,
``las_punct`` and ``well_formed``, in percent, and ``las_ud``: LAS as the CoNLL 2018 shared
task's evaluator (``conll18_ud_eval.py``) computes it, punctuation included and labels compared
by their universal relation only (``nmod:poss`` counts as ``nmod``). ``las_punct`` compares the
full labels, subtypes included.
"""

import math

import torch
import torch.nn.functional as F

from fairseq.criterions import FairseqCriterion, register_criterion
from fairseq.dataclass import FairseqDataclass
from fairseq.logging import metrics

from fairseq_plugins.errors import ConfigError
from fairseq_plugins.modules.tree_decoding import is_tree
from fairseq_plugins.percentages import log_percentages

PERCENTAGES = {  # metric: (numerator, denominator)
    "uas": ("heads_ok", "words"),
    "las": ("labels_ok", "words"),
    "uas_punct": ("heads_ok_punct", "words_punct"),
    "las_punct": ("labels_ok_punct", "words_punct"),
    "las_ud": ("universal_labels_ok", "words_punct"),
    "well_formed": ("trees", "sentences"),
}


def universal_label_indices(labels):
    """(L,) for each label the index of its universal relation (the part before ':'): ``nmod:poss`` -> ``nmod``."""
    universal = {}
    return torch.tensor([universal.setdefault(label.split(":")[0], len(universal)) for label in labels])


def attachment_counts(sample, heads, labels, universal):
    """The counts behind PERCENTAGES for predicted ``heads`` and ``labels`` (B, T) against the sample's gold ones;
    ``universal``: ``universal_label_indices`` of the task's labels."""
    gold_heads, gold_labels = sample["target"], sample["labels"]
    universal = universal.to(labels.device)
    universal_ok = (heads == gold_heads) & (gold_labels >= 0) & (
        universal[labels.clamp(min=0)] == universal[gold_labels.clamp(min=0)])
    scored = sample["scored"] & (gold_heads >= 0)
    without_punct = scored & ~sample["punct"]
    head_ok = heads == gold_heads
    label_ok = head_ok & (labels == gold_labels)
    lengths = sample["net_input"]["src_lengths"].tolist()
    predicted = heads.cpu().numpy()
    return {
        "words": int(without_punct.sum()),
        "heads_ok": int((head_ok & without_punct).sum()),
        "labels_ok": int((label_ok & without_punct).sum()),
        "words_punct": int(scored.sum()),
        "heads_ok_punct": int((head_ok & scored).sum()),
        "labels_ok_punct": int((label_ok & scored).sum()),
        "universal_labels_ok": int((universal_ok & scored).sum()),
        "sentences": len(lengths),
        "trees": sum(is_tree(predicted[row, :length]) for row, length in enumerate(lengths)),
    }


@register_criterion("dependency_parsing", dataclass=FairseqDataclass)
class DependencyParsingCriterion(FairseqCriterion):
    def __init__(self, task):
        super().__init__(task)
        if not hasattr(task, "labels"):
            raise ConfigError("--criterion dependency_parsing: needs --task dependency_parsing")

    def forward(self, model, sample, reduce=True):
        arc_scores, extra = model(**sample["net_input"])
        heads, labels = sample["target"], sample["labels"]
        words = heads >= 0
        arc_loss = F.cross_entropy(arc_scores[words].float(), heads[words], reduction="sum")
        label_scores = model.label_scores(extra, heads)[words & (labels >= 0)].float()
        gold = labels[words & (labels >= 0)]
        scorable = torch.isfinite(label_scores.gather(1, gold.unsqueeze(1)).squeeze(1))
        label_loss = F.cross_entropy(label_scores[scorable], gold[scorable], reduction="sum")
        loss = arc_loss + label_loss
        sample_size = int(words.sum())
        output = {
            "loss": loss.data,
            "arc_loss": arc_loss.data,
            "label_loss": label_loss.data,
            "ntokens": sample["ntokens"],
            "nsentences": sample["nsentences"],
            "sample_size": sample_size,
        }
        if not model.training:
            with torch.no_grad():
                predicted_heads, predicted_labels = model.parse(arc_scores, extra, sample["net_input"]["src_lengths"])
            output.update(attachment_counts(sample, predicted_heads, predicted_labels,
                                            universal_label_indices(self.task.labels)))
        return loss, sample_size, output

    @staticmethod
    def reduce_metrics(logging_outputs):
        sample_size = sum(log.get("sample_size", 0) for log in logging_outputs)
        for name in ("loss", "arc_loss", "label_loss"):
            total = sum(float(log.get(name, 0)) for log in logging_outputs)
            metrics.log_scalar(name, total / max(sample_size, 1) / math.log(2), sample_size, round=3)
        log_percentages(logging_outputs, PERCENTAGES)

    @staticmethod
    def logging_outputs_can_be_summed():
        return False
