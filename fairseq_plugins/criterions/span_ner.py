"""``span_ner``: negative log-likelihood of every span's gold label; span precision, recall and F1 in evaluation.

Loss: ``-sum_spans log P(gold | span)`` over every span of at most L tokens inside the sentences
(null spans included), reported per sentence in bits. For the instance head in training, a span
whose gold label no sampled instance carries (probability 0: e.g. a rare type absent from the K
sentences) is left out of that step's loss and counted in ``spans_without_instances``.

Evaluation (model in eval mode: fairseq-train's validation, fairseq-validate): the greedy,
non-overlapping decoding (``modules/spans.py``) is written as IOB2 tags and compared with the
gold tags by seqeval's strict IOB2 entity matching; ``precision``, ``recall`` and ``f1`` are
micro-averaged over the whole split (percent), from summed counts.
"""

import math

from seqeval.scheme import IOB2, Entities

from fairseq.criterions import FairseqCriterion, register_criterion
from fairseq.dataclass import FairseqDataclass
from fairseq.logging import metrics

from fairseq_plugins.errors import ConfigError
from fairseq_plugins.modules.spans import decode


def entity_counts(gold_tags, predicted_tags):
    """``(true positives, predicted, gold)`` entities of IOB2 tag sequences, matched as seqeval's strict mode does."""
    gold = set(_entities(gold_tags))
    predicted = set(_entities(predicted_tags))
    return len(gold & predicted), len(predicted), len(gold)


def _entities(tag_sequences):
    return [entity.to_tuple() for sentence in Entities(tag_sequences, IOB2).entities for entity in sentence]


@register_criterion("span_ner", dataclass=FairseqDataclass)
class SpanNerCriterion(FairseqCriterion):
    def __init__(self, task):
        super().__init__(task)
        if not hasattr(task, "predicted_tags"):
            raise ConfigError("--criterion span_ner needs --task span_ner")

    def forward(self, model, sample, reduce=True):
        log_probs, _ = model(**sample["net_input"])
        target = sample["target"]
        scored = target >= 0
        gold = log_probs[scored].gather(1, target[scored].unsqueeze(1)).squeeze(1)
        reachable = gold.isfinite()
        loss = -gold[reachable].sum()
        output = {
            "loss": loss.data,
            "ntokens": sample["ntokens"],
            "nsentences": sample["nsentences"],
            "sample_size": sample["nsentences"],
            "spans_without_instances": int((~reachable).sum()),
        }
        if not model.training:
            lengths = sample["net_input"]["src_lengths"]
            decoded = decode(log_probs, lengths)
            predicted = [self.task.predicted_tags(spans, int(length)) for spans, length in zip(decoded, lengths)]
            output["ner_tp"], output["ner_pred"], output["ner_gold"] = entity_counts(sample["gold_tags"], predicted)
        return loss, sample["nsentences"], output

    @staticmethod
    def reduce_metrics(logging_outputs):
        def total(key):
            return sum(log.get(key, 0) for log in logging_outputs)

        sample_size = total("sample_size")
        metrics.log_scalar("loss", total("loss") / max(sample_size, 1) / math.log(2), sample_size, round=3)
        if total("spans_without_instances"):
            metrics.log_scalar_sum("spans_without_instances", total("spans_without_instances"))
        if any("ner_gold" in log for log in logging_outputs):
            for key in ("tp", "pred", "gold"):
                metrics.log_scalar_sum(f"_ner_{key}", total(f"ner_{key}"))
            metrics.log_derived("precision", lambda meters: percent(meters["_ner_tp"].sum, meters["_ner_pred"].sum))
            metrics.log_derived("recall", lambda meters: percent(meters["_ner_tp"].sum, meters["_ner_gold"].sum))
            metrics.log_derived("f1", lambda meters: percent(2 * meters["_ner_tp"].sum,
                                                             meters["_ner_pred"].sum + meters["_ner_gold"].sum))

    @staticmethod
    def logging_outputs_can_be_summed():
        return False


def percent(numerator, denominator):
    return round(100.0 * numerator / denominator, 2) if denominator else 0.0
