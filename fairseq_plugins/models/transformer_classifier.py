"""``transformer_classifier``: a small Transformer encoder classifier for fairseq's ``sentence_prediction``.

A ``TransformerTokenEncoder`` (``models/token_encoders.py``: scaled token embeddings, sinusoidal
positions, ``--encoder-layers`` Pre-LN fairseq encoder layers, a final LayerNorm), the mean of the
non-padding states, and a linear classification head registered by the task (``--num-classes``).
Works with ``--criterion sentence_prediction`` (fairseq's) and with this package's
``classification_cross_entropy``, ``mixup_cross_entropy`` and ``dip_cross_entropy``.

Interface (shared by every classifier of the package):

- ``forward(src_tokens, ...) -> (logits (B, C), None)``, fairseq's sentence_prediction convention;
- ``features(src_tokens) -> (states (B, T, d), padding (B, T))``: per-token states, for heads that
  score tokens, spans or arcs instead of sentences;
- mixing point (``modules/mixing.py``): the embedding output, before positions are added.
  ``features_at_mixing_point(src_tokens) -> (embeddings (B, T, d), padding mask (B, T))``;
  ``forward_from_mixing_point(embeddings, padding) -> logits`` adds the positions of the mixed
  sequence (from its padding mask), so a mix of two sentences is one sentence with interpolated
  word vectors. ``reference_pool`` keeps DIP's reference sentences as token ids.
"""

from dataclasses import dataclass, field

from torch import nn

from fairseq.dataclass import FairseqDataclass
from fairseq.models import BaseFairseqModel, register_model

from fairseq_plugins.errors import ConfigError
from fairseq_plugins.models.token_encoders import TransformerTokenEncoder
from fairseq_plugins.modules.input_store import InputStore

# Parameters of checkpoints written before the encoder became a module of its own.
ENCODER_PARAMETERS = ("embed_tokens.", "embed_positions.", "layers.", "layer_norm.")


@dataclass
class TransformerClassifierConfig(FairseqDataclass):
    encoder_layers: int = field(default=2, metadata={"help": "encoder layers"})
    encoder_embed_dim: int = field(default=128, metadata={"help": "model dimension d"})
    encoder_ffn_embed_dim: int = field(default=256, metadata={"help": "feed-forward inner dimension"})
    encoder_attention_heads: int = field(default=4, metadata={"help": "attention heads"})
    dropout: float = field(default=0.1, metadata={"help": "dropout on embeddings and sub-layer outputs"})
    attention_dropout: float = field(default=0.0, metadata={"help": "dropout on attention weights"})
    max_positions: int = field(default=512, metadata={"help": "longest input (set by sentence_prediction)"})


class ClassifierOutput:
    """``forward`` returns ``(logits, extra)``; fairseq's criteria read log-probabilities from it."""

    def get_normalized_probs(self, net_output, log_probs, sample=None):
        logits = net_output[0].float()
        return logits.log_softmax(-1) if log_probs else logits.softmax(-1)


@register_model("transformer_classifier", dataclass=TransformerClassifierConfig)
class TransformerClassifier(ClassifierOutput, BaseFairseqModel):
    mixing_point = "embeddings"

    def __init__(self, cfg, dictionary):
        super().__init__()
        self.encoder = TransformerTokenEncoder(
            dictionary, cfg.encoder_embed_dim, cfg.encoder_ffn_embed_dim, cfg.encoder_layers,
            cfg.encoder_attention_heads, cfg.dropout, cfg.attention_dropout, cfg.max_positions,
        )
        self.classification_heads = nn.ModuleDict()
        self.reference_pool = InputStore()
        self.cfg = cfg

    @classmethod
    def build_model(cls, cfg, task):
        if task.source_dictionary is None:
            raise ConfigError("--arch transformer_classifier: needs a task with a token dictionary, e.g. --task sentence_prediction")
        return cls(cfg, task.source_dictionary)

    def upgrade_state_dict_named(self, state_dict, name):
        prefix = f"{name}." if name else ""
        for key in list(state_dict):
            local = key[len(prefix):]
            if key.startswith(prefix) and local.startswith(ENCODER_PARAMETERS):
                state_dict[f"{prefix}encoder.{local}"] = state_dict.pop(key)
        super().upgrade_state_dict_named(state_dict, name)

    def register_classification_head(self, name, num_classes=None, **unused):
        self.classification_heads[name] = nn.Linear(self.cfg.encoder_embed_dim, num_classes)

    def features(self, src_tokens, **unused):
        return self.encoder(src_tokens)

    def features_at_mixing_point(self, src_tokens, **unused):
        return self.encoder.embed(src_tokens)

    def forward_from_mixing_point(self, features, padding, classification_head_name=None):
        states = self.encoder.encode_embeddings(features, padding)
        pooled = states.sum(1) / (~padding).sum(1, keepdim=True).clamp(min=1).to(states.dtype)
        return self.head(classification_head_name)(pooled)

    def head(self, name):
        if name is None:
            if len(self.classification_heads) != 1:
                raise ConfigError(f"transformer_classifier has heads {list(self.classification_heads)}; name one")
            return next(iter(self.classification_heads.values()))
        return self.classification_heads[name]

    def forward(self, src_tokens, src_lengths=None, features_only=True, classification_head_name=None, **unused):
        features, padding = self.features_at_mixing_point(src_tokens)
        return self.forward_from_mixing_point(features, padding, classification_head_name), None

    def max_positions(self):
        return self.cfg.max_positions
