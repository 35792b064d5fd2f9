"""``transformer_classifier``: a small Transformer encoder classifier for fairseq's ``sentence_prediction``.

Token embeddings (scaled by sqrt(d), as fairseq's encoder), sinusoidal positions, ``--encoder-layers``
Pre-LN fairseq encoder layers (``TransformerEncoderLayerBase``, fairseq's parameter names), a final
LayerNorm, the mean of the non-padding positions, and a linear classification head registered by
the task (``--num-classes``). Works with ``--criterion sentence_prediction`` (fairseq's) and with
this package's ``classification_cross_entropy``, ``mixup_cross_entropy`` and ``dip_cross_entropy``.

Mixing point (``modules/mixing.py``): the embedding output, before positions are added.
``features_at_mixing_point(src_tokens) -> (embeddings (B, T, d), padding mask (B, T))``;
``forward_from_mixing_point(embeddings, padding) -> logits`` adds the positions of the mixed
sequence (from its padding mask), so a mix of two sentences is one sentence with interpolated
word vectors. ``reference_pool`` keeps DIP's reference sentences as token ids.
"""

from dataclasses import dataclass, field

import torch
from torch import nn

from fairseq.dataclass import FairseqDataclass
from fairseq.models import BaseFairseqModel, register_model
from fairseq.models.transformer import TransformerConfig
from fairseq.modules import LayerNorm, SinusoidalPositionalEmbedding
from fairseq.modules.transformer_layer import TransformerEncoderLayerBase

from fairseq_plugins.errors import ConfigError
from fairseq_plugins.modules.mixing import ReferencePool


@dataclass
class TransformerClassifierConfig(FairseqDataclass):
    encoder_layers: int = field(default=2, metadata={"help": "encoder layers"})
    encoder_embed_dim: int = field(default=128, metadata={"help": "model dimension d"})
    encoder_ffn_embed_dim: int = field(default=256, metadata={"help": "feed-forward inner dimension"})
    encoder_attention_heads: int = field(default=4, metadata={"help": "attention heads"})
    dropout: float = field(default=0.1, metadata={"help": "dropout on embeddings and sub-layer outputs"})
    attention_dropout: float = field(default=0.0, metadata={"help": "dropout on attention weights"})
    max_positions: int = field(default=512, metadata={"help": "longest input (set by sentence_prediction)"})


@register_model("transformer_classifier", dataclass=TransformerClassifierConfig)
class TransformerClassifier(BaseFairseqModel):
    mixing_point = "embeddings"

    def __init__(self, cfg, dictionary):
        super().__init__()
        if cfg.encoder_embed_dim % cfg.encoder_attention_heads:
            raise ConfigError(
                f"--encoder-embed-dim {cfg.encoder_embed_dim} must be a multiple of "
                f"--encoder-attention-heads {cfg.encoder_attention_heads}"
            )
        self.padding_idx = dictionary.pad()
        dim = cfg.encoder_embed_dim
        self.embed_tokens = nn.Embedding(len(dictionary), dim, padding_idx=self.padding_idx)
        nn.init.normal_(self.embed_tokens.weight, mean=0, std=dim**-0.5)
        nn.init.constant_(self.embed_tokens.weight[self.padding_idx], 0)
        self.embed_scale = dim**0.5
        self.embed_positions = SinusoidalPositionalEmbedding(dim, self.padding_idx, cfg.max_positions + self.padding_idx + 1)
        layer_cfg = TransformerConfig()
        layer_cfg.encoder.embed_dim = dim
        layer_cfg.encoder.ffn_embed_dim = cfg.encoder_ffn_embed_dim
        layer_cfg.encoder.attention_heads = cfg.encoder_attention_heads
        layer_cfg.encoder.normalize_before = True
        layer_cfg.dropout, layer_cfg.attention_dropout = cfg.dropout, cfg.attention_dropout
        self.layers = nn.ModuleList(TransformerEncoderLayerBase(layer_cfg) for _ in range(cfg.encoder_layers))
        self.layer_norm = LayerNorm(dim)
        self.dropout = nn.Dropout(cfg.dropout)
        self.classification_heads = nn.ModuleDict()
        self.reference_pool = ReferencePool()
        self.cfg = cfg

    @classmethod
    def build_model(cls, cfg, task):
        if task.source_dictionary is None:
            raise ConfigError("--arch transformer_classifier: needs a task with a token dictionary, e.g. --task sentence_prediction")
        return cls(cfg, task.source_dictionary)

    def register_classification_head(self, name, num_classes=None, **unused):
        self.classification_heads[name] = nn.Linear(self.cfg.encoder_embed_dim, num_classes)

    def features_at_mixing_point(self, src_tokens, **unused):
        return self.embed_scale * self.embed_tokens(src_tokens), src_tokens.eq(self.padding_idx)

    def forward_from_mixing_point(self, features, padding, classification_head_name=None):
        # Positions 1..n over the non-padding steps, from the mask (a mix has no tokens of its own).
        position_input = torch.where(padding, self.padding_idx, self.padding_idx + 1)
        x = self.dropout(features + self.embed_positions(position_input))
        x = x.masked_fill(padding.unsqueeze(-1), 0).transpose(0, 1)  # (T, B, d)
        for layer in self.layers:
            x = layer(x, encoder_padding_mask=padding)
        x = self.layer_norm(x).transpose(0, 1).masked_fill(padding.unsqueeze(-1), 0)
        pooled = x.sum(1) / (~padding).sum(1, keepdim=True).clamp(min=1).to(x.dtype)
        return self.head(classification_head_name)(pooled)

    def head(self, name):
        if name is None:
            if len(self.classification_heads) != 1:
                raise ConfigError(f"transformer_classifier has heads {list(self.classification_heads)}; name one")
            return next(iter(self.classification_heads.values()))
        return self.classification_heads[name]

    def forward(self, src_tokens, src_lengths=None, features_only=True, classification_head_name=None, **unused):
        """``(logits (B, C), None)``, as fairseq's sentence_prediction criterion expects."""
        features, padding = self.features_at_mixing_point(src_tokens)
        return self.forward_from_mixing_point(features, padding, classification_head_name), None

    def max_positions(self):
        return self.cfg.max_positions

