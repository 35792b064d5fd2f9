"""Image classifiers with turn-over dropout (``modules/turnover_dropout.py``) on their hidden layers.

``turnover_image_classifier`` is ``image_classifier`` (``models/image_classifiers.py``) with a
TurnOverDropout layer after the ReLU (and ordinary dropout) of hidden layers; presets
``turnover_image_mlp`` and ``turnover_image_cnn`` have the dims of ``image_mlp`` / ``image_cnn``.
Train with ``--criterion turnover_cross_entropy`` (each instance trains its own sub-network),
then run ``fairseq-plugins-influence`` on the checkpoint. Validation and inference use the full
network. Parameter names equal ``image_classifier``'s (each hidden dropout becomes
``Sequential(dropout, turn-over dropout)``; neither holds weights), so weights move between the two.

| flag | values | default |
|---|---|---|
| ``--turnover-dropout`` | ``all`` (every hidden layer), ``last`` (the last hidden layer) | ``all`` |
| ``--turnover-seed`` | integer: layer k's mask seed is ``seed * 65536 + k`` (stored in the checkpoint) | 0 |
"""

from dataclasses import dataclass, field

from torch import nn

from fairseq.models import register_model, register_model_architecture

from fairseq_plugins.errors import ConfigError
from fairseq_plugins.models.image_classifiers import ImageClassifier, ImageClassifierConfig, image_cnn, image_mlp
from fairseq_plugins.modules.turnover_dropout import TurnOverDropout, turnover_layers

PLACEMENTS = ("all", "last")


@dataclass
class TurnOverImageClassifierConfig(ImageClassifierConfig):
    turnover_dropout: str = field(
        default="all", metadata={"help": f"hidden layers with turn-over dropout: one of {', '.join(PLACEMENTS)}"}
    )
    turnover_seed: int = field(default=0, metadata={"help": "seed of the per-instance masks (layer k: seed * 65536 + k)"})


@register_model("turnover_image_classifier", dataclass=TurnOverImageClassifierConfig)
class TurnOverImageClassifier(ImageClassifier):
    def __init__(self, cfg, image_shape, num_classes):
        super().__init__(cfg, image_shape, num_classes)
        if cfg.turnover_dropout not in PLACEMENTS:
            raise ConfigError(f"--turnover-dropout {cfg.turnover_dropout}: choose one of {', '.join(PLACEMENTS)}")
        hidden = [i for i, layer in enumerate(self.encoder) if isinstance(layer, nn.Dropout)]
        if not hidden:
            raise ConfigError("--turnover-dropout needs at least one hidden layer (--hidden-layers >= 1)")
        if cfg.turnover_dropout == "last":
            hidden = hidden[-1:]
        for k, i in enumerate(hidden):
            self.encoder[i] = nn.Sequential(self.encoder[i], TurnOverDropout(seed=cfg.turnover_seed * 65536 + k))

    def encode(self, images, **kwargs):
        if self.training and turnover_layers(self)[0].ids is None:
            raise ConfigError(
                "--arch turnover_*: training runs each instance's own sub-network and needs the batch's "
                "instance ids; use --criterion turnover_cross_entropy"
            )
        return super().encode(images, **kwargs)


@register_model_architecture("turnover_image_classifier", "turnover_image_mlp")
def turnover_image_mlp(args):
    image_mlp(args)


@register_model_architecture("turnover_image_classifier", "turnover_image_cnn")
def turnover_image_cnn(args):
    image_cnn(args)
