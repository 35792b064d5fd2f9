"""``classification_cross_entropy``: ERM for classifiers, logging ``accuracy``; the base of mixup and DIP.

Works with the ``image_classification`` task and with fairseq's ``sentence_prediction`` task
(classification only). The model maps ``sample["net_input"]`` to logits (B, C) (or a tuple whose
first item they are): ``image_mlp``, ``image_cnn``, ``transformer_classifier``. The loss is the
sum of the examples' cross entropies; fairseq reports it per example, in bits. ``accuracy`` (percent)
is logged in training and validation, so ``fairseq-validate`` prints it.

The two ``sentence_prediction`` fields below are here because that task reads them from the
criterion's config.
"""

import math
from dataclasses import dataclass, field

import torch.nn.functional as F

from fairseq.criterions import FairseqCriterion, register_criterion
from fairseq.dataclass import FairseqDataclass
from fairseq.logging import metrics

from fairseq_plugins.errors import ConfigError
from fairseq_plugins.percentages import ACCURACY, log_percentages


@dataclass
class ClassificationCrossEntropyConfig(FairseqDataclass):
    classification_head_name: str = field(
        default="sentence_classification_head",
        metadata={"help": "--task sentence_prediction: name of the classification head"},
    )
    regression_target: bool = field(default=False, metadata={"help": "not supported: these criteria classify"})


def require_mixing_point(model, criterion):
    if not hasattr(model, "features_at_mixing_point"):
        raise ConfigError(
            f"--criterion {criterion} needs a model that declares its mixing point (--arch image_mlp, "
            f"image_cnn or transformer_classifier); {type(model).__name__} does not"
        )


@register_criterion("classification_cross_entropy", dataclass=ClassificationCrossEntropyConfig)
class ClassificationCrossEntropyCriterion(FairseqCriterion):
    def __init__(self, cfg, task):
        super().__init__(task)
        if cfg.regression_target:
            raise ConfigError("--regression-target: these criteria classify; use --criterion sentence_prediction for regression")
        self.cfg = cfg

    def forward(self, model, sample, reduce=True):
        logits, _ = model(**sample["net_input"])
        target = sample["target"].view(-1)
        loss = F.cross_entropy(logits.float(), target, reduction="sum")
        return loss, target.numel(), self.logging_output(sample, loss, logits, target)

    def logging_output(self, sample, loss, predictions, target):
        """fairseq's logging dict; ``predictions`` (B, C) scores, or None when accuracy means nothing."""
        output = {
            "loss": loss.data,
            "ntokens": sample.get("ntokens", target.numel()),
            "nsentences": target.numel(),
            "sample_size": target.numel(),
        }
        if predictions is not None:
            output["ncorrect"] = (predictions.argmax(-1) == target).sum().item()
            output["nexamples"] = target.numel()
        return output

    @staticmethod
    def reduce_metrics(logging_outputs):
        loss = sum(log.get("loss", 0) for log in logging_outputs)
        sample_size = sum(log.get("sample_size", 0) for log in logging_outputs)
        metrics.log_scalar("loss", loss / sample_size / math.log(2), sample_size, round=3)
        log_percentages(logging_outputs, ACCURACY)

    @staticmethod
    def logging_outputs_can_be_summed():
        return False
