"""Classifiers with turn-over dropout (``modules/turnover_dropout.py``) on their hidden layers.

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

``turnover_transformer_classifier`` is ``transformer_classifier`` (``--task sentence_prediction``)
with a TurnOverDropout layer on the FFN hidden units (after fc1's activation) of every encoder
layer, and ``--turnover-seed`` as above.

``tiles_at_first_mask``: True where everything after the first turn-over layer is computed row by
row (the MLP/CNN), so the influence command may run the layers below it once per test instance
(``use_instances(..., rows_per_id=n)``); the transformer's residual streams bypass its masks, so
the command repeats its whole input per training instance instead.
"""

from dataclasses import dataclass, field

from torch import nn

from fairseq.models import register_model, register_model_architecture

from fairseq_plugins.errors import ConfigError
from fairseq_plugins.models.image_classifiers import ImageClassifier, ImageClassifierConfig, image_cnn, image_mlp
from fairseq_plugins.models.transformer_classifier import TransformerClassifier, TransformerClassifierConfig
from fairseq_plugins.modules.turnover_dropout import TurnOverDropout, turnover_layers
from fairseq_plugins.options import check_options, choice_field, dataclass_defaults

PLACEMENTS = ("all", "last")


SEED_HELP = "seed of the per-instance masks (layer k: seed * 65536 + k)"


def layer_seed(cfg, k):
    return cfg.turnover_seed * 65536 + k


def require_instance_ids(model):
    if model.training and turnover_layers(model)[0].ids is None:
        raise ConfigError(
            "--arch turnover_*: training runs each instance's own sub-network and needs the batch's "
            "instance ids; use --criterion turnover_cross_entropy"
        )


@dataclass
class TurnOverImageClassifierConfig(ImageClassifierConfig):
    turnover_dropout: str = choice_field("all", PLACEMENTS, "hidden layers with turn-over dropout")
    turnover_seed: int = field(default=0, metadata={"help": SEED_HELP})


@register_model("turnover_image_classifier", dataclass=TurnOverImageClassifierConfig)
class TurnOverImageClassifier(ImageClassifier):
    tiles_at_first_mask = True

    @classmethod
    def build_model(cls, cfg, task):
        dataclass_defaults(cfg, TurnOverImageClassifierConfig)  # fairseq's Namespace path leaves them unset
        return super().build_model(cfg, task)

    def __init__(self, cfg, image_shape, num_classes):
        super().__init__(cfg, image_shape, num_classes)
        check_options(cfg, TurnOverImageClassifierConfig)
        hidden = [i for i, layer in enumerate(self.encoder) if isinstance(layer, nn.Dropout)]
        if not hidden:
            raise ConfigError("--turnover-dropout needs at least one hidden layer (--hidden-layers >= 1)")
        if cfg.turnover_dropout == "last":
            hidden = hidden[-1:]
        for k, i in enumerate(hidden):
            self.encoder[i] = nn.Sequential(self.encoder[i], TurnOverDropout(seed=layer_seed(cfg, k)))

    def encode(self, images, **kwargs):
        require_instance_ids(self)
        return super().encode(images, **kwargs)


@register_model_architecture("turnover_image_classifier", "turnover_image_mlp")
def turnover_image_mlp(args):
    image_mlp(args)


@register_model_architecture("turnover_image_classifier", "turnover_image_cnn")
def turnover_image_cnn(args):
    image_cnn(args)


@dataclass
class TurnOverTransformerClassifierConfig(TransformerClassifierConfig):
    turnover_seed: int = field(default=0, metadata={"help": SEED_HELP})


@register_model("turnover_transformer_classifier", dataclass=TurnOverTransformerClassifierConfig)
class TurnOverTransformerClassifier(TransformerClassifier):
    tiles_at_first_mask = False

    def __init__(self, cfg, dictionary):
        super().__init__(cfg, dictionary)
        for k, layer in enumerate(self.encoder.layers):  # FFN hidden units are (T, B, ffn): batch dimension 1
            layer.activation_dropout_module = nn.Sequential(
                layer.activation_dropout_module, TurnOverDropout(seed=layer_seed(cfg, k), batch_dim=1)
            )

    def forward_from_mixing_point(self, features, padding, classification_head_name=None):
        require_instance_ids(self)
        return super().forward_from_mixing_point(features, padding, classification_head_name)
