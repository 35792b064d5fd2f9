"""Small image classifiers for the ``image_classification`` task: ``image_mlp`` and ``image_cnn``.

One model, ``image_classifier``: optional 3x3 convolution blocks (conv, ReLU, 2x2 max-pool, one
per entry of ``--conv-channels``), then ``--hidden-layers`` fully connected ReLU layers of
``--hidden-dim`` units (dropout ``--dropout`` after each), then a linear output layer. The
presets only set defaults:

- ``image_mlp``: no convolution, 2 hidden layers of 256;
- ``image_cnn``: ``--conv-channels 32,64``, 1 hidden layer of 256.

The input shape (C, H, W) and the number of classes come from the task.

Interface (what criteria and other methods rely on):

- ``forward(images, **kwargs) -> (logits (B, num_classes), None)``, like every classifier of the
  package (``models/transformer_classifier.py``); ``images``: (B, C, H, W) floats.
  Extra keyword arguments go to ``encode``: a subclass that needs more per example (e.g. the
  dataset index ``sample["id"]``) overrides ``encode(images, **kwargs)``.
- ``encode(images) -> hidden`` (B, hidden) and ``output_projection`` (hidden -> logits).
- Mixing point (``modules/mixing.py``): the input pixels. ``mixing_point = "images"``,
  ``features_at_mixing_point(images) -> (images, None)`` and
  ``forward_from_mixing_point(features, padding=None, **kwargs) -> logits``.
- ``reference_pool``: DIP's training inputs (empty unless trained with ``dip_cross_entropy``),
  saved in the state dict.
"""

from dataclasses import dataclass, field

from torch import nn

from fairseq.dataclass import FairseqDataclass
from fairseq.models import BaseFairseqModel, register_model, register_model_architecture

from fairseq_plugins.errors import ConfigError
from fairseq_plugins.models.transformer_classifier import ClassifierOutput
from fairseq_plugins.modules.input_store import InputStore
from fairseq_plugins.options import bounded_field, check_options, set_defaults


@dataclass
class ImageClassifierConfig(FairseqDataclass):
    conv_channels: str = field(
        default="",
        metadata={"help": "comma-separated output channels of the 3x3 conv + ReLU + 2x2 max-pool blocks; empty: none"},
    )
    hidden_dim: int = bounded_field(256, ">= 1", "units of each fully connected hidden layer")
    hidden_layers: int = bounded_field(2, ">= 0", "fully connected ReLU layers before the output layer")
    dropout: float = bounded_field(0.0, "[0, 1)", "dropout after each hidden layer")


def parse_channels(text):
    try:
        channels = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        channels = [0]
    if any(c < 1 for c in channels):
        raise ConfigError(f"--conv-channels {text!r}: give positive integers separated by commas, e.g. 32,64 (or '' for none)")
    return channels


@register_model("image_classifier", dataclass=ImageClassifierConfig)
class ImageClassifier(ClassifierOutput, BaseFairseqModel):
    mixing_point = "images"

    def __init__(self, cfg, image_shape, num_classes):
        super().__init__()
        channels = parse_channels(cfg.conv_channels)
        check_options(cfg, ImageClassifierConfig)
        in_channels, height, width = image_shape
        layers = []
        for out_channels in channels:
            layers += [nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            in_channels, height, width = out_channels, height // 2, width // 2
        if height < 1 or width < 1:
            raise ConfigError(
                f"--conv-channels {cfg.conv_channels}: {len(channels)} max-pool blocks shrink a "
                f"{image_shape[1]}x{image_shape[2]} image to nothing; use fewer blocks"
            )
        layers.append(nn.Flatten())
        features = in_channels * height * width
        for _ in range(cfg.hidden_layers):
            layers += [nn.Linear(features, cfg.hidden_dim), nn.ReLU(), nn.Dropout(cfg.dropout)]
            features = cfg.hidden_dim
        self.encoder = nn.Sequential(*layers)
        self.output_projection = nn.Linear(features, num_classes)
        self.reference_pool = InputStore()

    @classmethod
    def build_model(cls, cfg, task):
        if not hasattr(task, "image_shape"):
            raise ConfigError(f"--arch {cfg._name}: needs --task image_classification")
        return cls(cfg, task.image_shape, task.num_classes)

    def encode(self, images):
        return self.encoder(images)

    def features_at_mixing_point(self, images):
        return images, None

    def forward_from_mixing_point(self, features, padding=None, **kwargs):
        return self.output_projection(self.encode(features, **kwargs))

    def forward(self, images, **kwargs):
        return self.forward_from_mixing_point(images, None, **kwargs), None

    def max_positions(self):
        return None


@register_model_architecture("image_classifier", "image_mlp")
def image_mlp(args):
    set_defaults(args, conv_channels="", hidden_dim=256, hidden_layers=2, dropout=0.0)


@register_model_architecture("image_classifier", "image_cnn")
def image_cnn(args):
    set_defaults(args, conv_channels="32,64", hidden_dim=256, hidden_layers=1, dropout=0.0)
