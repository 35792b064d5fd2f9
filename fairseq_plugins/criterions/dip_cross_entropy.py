"""``dip_cross_entropy``: DIP (Shimada et al. 2019), the mixing inside the predictor.

The predictor is ``f(x) = (1/S) sum_s softmax(g(lam_s x + (1 - lam_s) x'_s))`` with
``lam_s = max(u, 1 - u)``, ``u ~ Beta(a, a)`` and x'_s drawn from a reference pool of training
inputs; the loss is ``-log f(x)_y`` with x's own label, and the same ``f`` predicts at evaluation
(choices and reasoning: ``modules/mixing.py``). ``g`` is the network after the model's mixing
point (pixels for ``image_mlp``/``image_cnn``, token embeddings for ``transformer_classifier``).

Reference pool: ``--dip-pool-size`` training examples (all of them if fewer), chosen with
``--seed`` at the first training step and stored in the model's state dict
(``model.reference_pool``), so a checkpoint predicts on its own: fairseq-validate and
``fairseq-plugins-dip-evaluate`` reproduce fairseq-train's validation accuracy. The pool holds
inputs (pixels, or token ids whose embeddings follow training).

Draws: ``--dip-train-samples`` per example in training, fresh every update (seeded by fairseq's
per-update seed); ``--dip-eval-samples`` per example in evaluation, seeded by ``--seed`` and the
example's index, so a prediction does not depend on the batch it is in. Change S when
evaluating a checkpoint with ``fairseq-validate ... --criterion dip_cross_entropy --dip-eval-samples 64``.
"""

import logging
from dataclasses import dataclass

import numpy as np
import torch.nn.functional as F
from omegaconf import II

from fairseq.criterions import register_criterion

from fairseq_plugins.criterions.classification_cross_entropy import (
    ClassificationCrossEntropyConfig,
    ClassificationCrossEntropyCriterion,
    require_mixing_point,
)
from fairseq_plugins.criterions.mixup_cross_entropy import generator_from_trainer_seed
from fairseq_plugins.errors import ConfigError
from fairseq_plugins.modules.mixing import dip_log_probs, evaluation_draws, training_draws
from fairseq_plugins.options import bounded_field, check_options

logger = logging.getLogger(__name__)
POOL_STREAM = 7919  # the pool's generator is seeded by (--seed, POOL_STREAM): unrelated to other draws


@dataclass
class DipCrossEntropyConfig(ClassificationCrossEntropyConfig):
    dip_alpha: float = bounded_field(1.0, "> 0", "a: lam = max(u, 1 - u), u ~ Beta(a, a)")
    dip_train_samples: int = bounded_field(4, ">= 1", "S, mixes averaged per example in training")
    dip_eval_samples: int = bounded_field(16, ">= 1", "S, mixes averaged per example in evaluation")
    dip_pool_size: int = bounded_field(1000, ">= 1", "training inputs kept with the model as references")
    seed: int = II("common.seed")


@register_criterion("dip_cross_entropy", dataclass=DipCrossEntropyConfig)
class DipCrossEntropyCriterion(ClassificationCrossEntropyCriterion):
    def __init__(self, cfg, task):
        super().__init__(cfg, task)
        check_options(cfg, DipCrossEntropyConfig)

    def forward(self, model, sample, reduce=True):
        require_mixing_point(model, "dip_cross_entropy")
        pool = model.reference_pool
        if len(pool) == 0:
            if not model.training:
                raise ConfigError(
                    "this model has no DIP reference pool: evaluate with --criterion dip_cross_entropy only "
                    "checkpoints trained with it"
                )
            self.fill_reference_pool(model)
        target = sample["target"].view(-1)
        log_probs = self.log_probs(model, sample["net_input"], sample["id"])
        loss = F.nll_loss(log_probs, target, reduction="sum")
        return loss, target.numel(), self.logging_output(sample, loss, log_probs, target)

    def log_probs(self, model, net_input, ids):
        """log f(x) (B, C) of the batch ``net_input`` whose examples have indices ``ids`` (the evaluation
        draws depend on them); no labels needed, so fairseq-plugins-predict predicts with it."""
        pool = model.reference_pool
        features, padding = model.features_at_mixing_point(**net_input)
        if model.training:
            weights, references = training_draws(
                generator_from_trainer_seed(), len(ids), self.cfg.dip_train_samples, self.cfg.dip_alpha, len(pool)
            )
        else:
            weights, references = evaluation_draws(self.cfg.seed, ids, self.cfg.dip_eval_samples, self.cfg.dip_alpha, len(pool))
        reference_features, reference_padding = model.features_at_mixing_point(**pool.select(references.view(-1)))
        return dip_log_probs(
            model.forward_from_mixing_point, features, padding, reference_features, reference_padding,
            weights.to(features.device),
        )

    def fill_reference_pool(self, model):
        dataset = self.task.dataset("train")
        size = min(self.cfg.dip_pool_size, len(dataset))
        if size < self.cfg.dip_pool_size:
            logger.warning("--dip-pool-size %d: the training set has %d examples; the pool keeps them all", self.cfg.dip_pool_size, size)
        indices = np.sort(np.random.default_rng([self.cfg.seed, POOL_STREAM]).choice(len(dataset), size, replace=False))
        net_input = dataset.collater([dataset[int(i)] for i in indices])["net_input"]
        device = next(model.parameters()).device
        model.reference_pool.fill({name: tensor.to(device) for name, tensor in net_input.items()})
        logger.info("DIP reference pool: %d training examples", size)
