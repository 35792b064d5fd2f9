"""``length_controlled_translation``: translation whose decoding asks for an output length.

A model trained with ``--positions lrpe`` or ``ldpe`` (modules/length_positions.py) learns
from the length of each reference; at decoding this task hands ``--desired-length N`` (in the
model's ``--length-unit``) to the decoder before every batch, so plain ``fairseq-generate`` does
length-controlled generation:

    fairseq-generate DATA --user-dir "$(fairseq-plugins-dir)" --task length_controlled_translation \\
        --desired-length 75 --path checkpoint.pt

Training needs nothing from the task (the reference length is read off the decoder input), so a
model trained with the stock ``translation`` task decodes here too.
"""

from dataclasses import dataclass, field
from typing import Optional

from fairseq.tasks import register_task
from fairseq.tasks.translation import TranslationConfig, TranslationTask

from fairseq_plugins.errors import ConfigError
from fairseq_plugins.modules.length_positions import LengthControlledPositions

TASK_NAME = "length_controlled_translation"


@dataclass
class LengthControlledTranslationConfig(TranslationConfig):
    desired_length: Optional[int] = field(
        default=None,
        metadata={"help": "output length asked of a --positions lrpe/ldpe model at decoding, in its --length-unit"},
    )


@register_task(TASK_NAME, dataclass=LengthControlledTranslationConfig)
class LengthControlledTranslationTask(TranslationTask):
    def inference_step(self, generator, models, sample, prefix_tokens=None, constraints=None):
        for model in models:
            self.ask_length(model)
        return super().inference_step(generator, models, sample, prefix_tokens, constraints)

    def ask_length(self, model):
        desired = self.cfg.desired_length
        if desired is None or desired < 1:
            raise ConfigError(f"--desired-length must be a positive integer for --task {TASK_NAME} (got {desired})")
        position_modules = [m for m in model.modules() if isinstance(m, LengthControlledPositions)]
        if not position_modules:
            raise ConfigError(f"--desired-length needs a model trained with --positions lrpe or ldpe; "
                              f"this one has --positions {getattr(getattr(model, 'cfg', None), 'positions', 'sinusoidal')}")
        for module in position_modules:
            module.desired_length = desired
