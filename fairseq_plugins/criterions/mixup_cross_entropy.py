"""``mixup_cross_entropy``: mixup (Zhang et al., ICLR 2018) at the model's mixing point.

In training each batch is mixed with a permutation of itself at the point the model declares
(pixels for ``image_mlp``/``image_cnn``, token embeddings for ``transformer_classifier``), with
one ``lam ~ Beta(a, a)`` per batch as in the paper's reference code, and the loss is the cross
entropy against ``lam * onehot(y) + (1 - lam) * onehot(y')`` (``modules/mixing.py``). The
permutation and ``lam`` come from a generator seeded by fairseq's per-update seed, so a run is
reproducible and resumes identically. Evaluation predicts on clean inputs (plain cross entropy
and accuracy); training logs no accuracy, which would mean nothing on mixed inputs.
"""

from dataclasses import dataclass

import numpy as np
import torch

from fairseq.criterions import register_criterion

from fairseq_plugins.criterions.classification_cross_entropy import (
    ClassificationCrossEntropyConfig,
    ClassificationCrossEntropyCriterion,
    require_mixing_point,
)
from fairseq_plugins.modules.mixing import mix, mixed_targets, sample_mixing_weights, soft_cross_entropy
from fairseq_plugins.modules.rank_streams import draw_per_rank
from fairseq_plugins.options import bounded_field, check_options


@dataclass
class MixupCrossEntropyConfig(ClassificationCrossEntropyConfig):
    mixup_alpha: float = bounded_field(0.2, "> 0", "a of lam ~ Beta(a, a)")


def generator_from_trainer_seed():
    """A numpy generator seeded from torch's global generator, which fairseq reseeds every update;
    each data-parallel worker gets a generator of its own (rank 0 the one a single process gets)."""
    return np.random.default_rng(int(draw_per_rank(lambda generator: torch.randint(0, 2**62, (1,), generator=generator))))


@register_criterion("mixup_cross_entropy", dataclass=MixupCrossEntropyConfig)
class MixupCrossEntropyCriterion(ClassificationCrossEntropyCriterion):
    def __init__(self, cfg, task):
        super().__init__(cfg, task)
        check_options(cfg, MixupCrossEntropyConfig)

    def forward(self, model, sample, reduce=True):
        require_mixing_point(model, "mixup_cross_entropy")
        if not model.training:
            return super().forward(model, sample, reduce)
        features, padding = model.features_at_mixing_point(**sample["net_input"])
        target = sample["target"].view(-1)
        rng = generator_from_trainer_seed()
        partner = torch.from_numpy(rng.permutation(target.numel())).to(target.device)
        weights = sample_mixing_weights(rng, self.cfg.mixup_alpha, 1).to(features.device).expand(target.numel())
        mixed, mixed_padding = mix(features, features[partner], weights, padding, None if padding is None else padding[partner])
        logits = model.forward_from_mixing_point(mixed, mixed_padding)
        soft_targets = mixed_targets(target, target[partner], weights, logits.size(-1))
        loss = soft_cross_entropy(logits, soft_targets).sum()
        return loss, target.numel(), self.logging_output(sample, loss, None, target)
