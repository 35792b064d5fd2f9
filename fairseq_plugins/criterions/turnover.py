"""A criterion that trains each instance's own turn-over dropout sub-network.

``turnover_cross_entropy`` is ``classification_cross_entropy`` run under the masks of
the batch's instance ids (``sample["id"]``, the dataset index of each instance:
stable across epochs and reloads, so the influence command finds the same
masks). Validation and inference run the full network.
"""

import contextlib

from fairseq.criterions import register_criterion

from fairseq_plugins.criterions.classification_cross_entropy import (
    ClassificationCrossEntropyConfig,
    ClassificationCrossEntropyCriterion,
)
from fairseq_plugins.errors import ConfigError
from fairseq_plugins.modules.turnover_dropout import turnover_layers, use_instances


def instance_masks_for(model, sample):
    """The masks of the batch's instances in training; the full network otherwise."""
    if not model.training or not turnover_layers(model):
        return contextlib.nullcontext()
    if sample.get("id") is None:
        raise ConfigError(
            "--criterion turnover_cross_entropy: the training batch has no 'id' (each instance's dataset index); "
            "turn-over dropout needs a task whose batches carry sample['id']"
        )
    return use_instances(model, sample["id"])


@register_criterion("turnover_cross_entropy", dataclass=ClassificationCrossEntropyConfig)
class TurnOverCrossEntropyCriterion(ClassificationCrossEntropyCriterion):
    def forward(self, model, sample, reduce=True):
        with instance_masks_for(model, sample):
            return super().forward(model, sample, reduce)
