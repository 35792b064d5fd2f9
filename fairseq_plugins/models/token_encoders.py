"""Per-token encoders: the seam that classifiers, span heads and arc heads build on.

Every encoder here is an ``nn.Module`` with

- ``output_dim``: the size of each token's state;
- ``forward(src_tokens) -> (states (B, T, output_dim), padding (B, T) bool)``: one state per
  token, zero at padding positions; ``padding`` is True at padding.

A head never needs to know which encoder it sits on. ``build_token_encoder(cfg, dictionary)``
builds the one named by ``--encoder-type`` (``bilstm`` or ``transformer``) from the options of
``TokenEncoderConfig``, which a model's config inherits.
"""

import logging
from dataclasses import dataclass, field

import torch
from torch import nn

from fairseq.dataclass import FairseqDataclass
from fairseq.models.transformer import TransformerConfig
from fairseq.modules import LayerNorm, SinusoidalPositionalEmbedding
from fairseq.modules.transformer_layer import TransformerEncoderLayerBase

from fairseq_plugins.errors import ConfigError
from fairseq_plugins.modules.char_encoder import CharacterCNN, Highway, PartlyPretrainedEmbedding
from fairseq_plugins.options import bounded_field, check_options, choice_field

logger = logging.getLogger(__name__)

MAX_WORD_CHARACTERS = 24  # longer words are read by their first 24 characters
HIGHWAY_LAYERS = 2  # on [word vector; character features], as Ouchi et al.'s NER encoder


def word_embedding(dictionary, embed_dim, freeze):
    """An ``nn.Embedding`` over ``dictionary``, or, when its words come with pretrained vectors
    (``data/word_vectors.PretrainedWords``), a ``PartlyPretrainedEmbedding`` whose pretrained rows
    are fixed when ``freeze``; ``init_word_embeddings`` copies the vectors in."""
    if getattr(dictionary, "first_pretrained", None) is None:
        return nn.Embedding(len(dictionary), embed_dim, padding_idx=dictionary.pad())
    return PartlyPretrainedEmbedding(len(dictionary), dictionary.first_pretrained, embed_dim, dictionary.pad(), freeze)


def word_characters(dictionary):
    """``(characters (V, MAX_WORD_CHARACTERS) int32, number of character ids)``: each word's
    characters as ids (1.. in order of first appearance over the dictionary, 0 = padding; the
    padding symbol has none). A function of the dictionary, which the checkpoint carries, so the
    character vocabulary travels with it."""
    ids = {}
    table = torch.zeros(len(dictionary), MAX_WORD_CHARACTERS, dtype=torch.int32)
    for index, word in enumerate(dictionary.symbols):
        if index != dictionary.pad():
            table[index, :min(len(word), MAX_WORD_CHARACTERS)] = torch.tensor(
                [ids.setdefault(c, len(ids) + 1) for c in word[:MAX_WORD_CHARACTERS]], dtype=torch.int32)
    return table, len(ids) + 1


class TransformerTokenEncoder(nn.Module):
    """Token embeddings scaled by sqrt(d), sinusoidal positions, Pre-LN fairseq encoder layers
    (fairseq's parameter names) and a final LayerNorm.

    ``embed(src_tokens)`` and ``encode_embeddings(embeddings, padding)`` split the forward at the
    embedding output, before positions are added (the mixing point of mixup/DIP): positions
    come from the padding mask, so a mix of two sentences is one sentence with interpolated
    word vectors.
    """

    def __init__(self, dictionary, embed_dim, ffn_embed_dim, layers, attention_heads, dropout, attention_dropout,
                 max_positions, freeze_embeddings=False):
        super().__init__()
        if embed_dim % attention_heads:
            raise ConfigError(
                f"--encoder-embed-dim {embed_dim} must be a multiple of --encoder-attention-heads {attention_heads}"
            )
        self.padding_idx = dictionary.pad()
        self.output_dim = embed_dim
        self.max_positions = max_positions
        self.embed_tokens = word_embedding(dictionary, embed_dim, freeze_embeddings)
        table = getattr(self.embed_tokens, "trained", self.embed_tokens)
        nn.init.normal_(table.weight, mean=0, std=embed_dim**-0.5)
        nn.init.constant_(table.weight[self.padding_idx], 0)
        self.embed_scale = embed_dim**0.5
        self.embed_positions = SinusoidalPositionalEmbedding(
            embed_dim, self.padding_idx, max_positions + self.padding_idx + 1
        )
        layer_cfg = TransformerConfig()
        layer_cfg.encoder.embed_dim = embed_dim
        layer_cfg.encoder.ffn_embed_dim = ffn_embed_dim
        layer_cfg.encoder.attention_heads = attention_heads
        layer_cfg.encoder.normalize_before = True
        layer_cfg.dropout, layer_cfg.attention_dropout = dropout, attention_dropout
        self.layers = nn.ModuleList(TransformerEncoderLayerBase(layer_cfg) for _ in range(layers))
        self.layer_norm = LayerNorm(embed_dim)
        self.dropout = nn.Dropout(dropout)

    def embed(self, src_tokens):
        """``(scaled token embeddings (B, T, d), padding (B, T))``."""
        return self.embed_scale * self.embed_tokens(src_tokens), src_tokens.eq(self.padding_idx)

    def encode_embeddings(self, embeddings, padding):
        if embeddings.size(1) > self.max_positions:
            raise ConfigError(
                f"a sentence of {embeddings.size(1)} tokens is longer than --max-positions {self.max_positions}"
            )
        # Positions 1..n over the non-padding steps, from the mask (a mix has no tokens of its own).
        position_input = torch.where(padding, self.padding_idx, self.padding_idx + 1)
        x = self.dropout(embeddings + self.embed_positions(position_input))
        x = x.masked_fill(padding.unsqueeze(-1), 0).transpose(0, 1)  # (T, B, d)
        for layer in self.layers:
            x = layer(x, encoder_padding_mask=padding)
        return self.layer_norm(x).transpose(0, 1).masked_fill(padding.unsqueeze(-1), 0)

    def forward(self, src_tokens):
        embeddings, padding = self.embed(src_tokens)
        return self.encode_embeddings(embeddings, padding), padding


class BiLSTMTokenEncoder(nn.Module):
    """Word embeddings, optionally concatenated with character-CNN features of each word and two
    highway layers (``char_filters`` > 0; ``modules/char_encoder.py``), dropout, a ``layers``-deep
    bidirectional LSTM (``hidden_dim`` units per direction), dropout: Ouchi et al.'s span encoder
    (2 layers of 100 units; their GloVe vectors through ``--word-embeddings``, their character CNN
    through ``--char-filters``). A word's characters are those of its dictionary entry (a word
    unknown to the dictionary reads as its lowercased entry or ``<unk>``), so the batches carry word
    ids only and every task gets characters without code of its own.

    ``states[..., :hidden_dim]`` are the forward states, ``states[..., hidden_dim:]`` the backward
    ones (what span vectors take differences of). Unknown words: in training, each token is
    replaced by ``<unk>`` with probability ``word_dropout``, so the ``<unk>`` embedding that
    words unseen in training map to is trained. The LSTM has no length limit; ``max_positions``
    is only reported to fairseq (its batching filter).
    """

    def __init__(self, dictionary, embed_dim, hidden_dim, layers, dropout, word_dropout, max_positions,
                 freeze_embeddings=False, char_embed_dim=0, char_filters=0, char_kernel_width=3):
        super().__init__()
        self.padding_idx, self.unk_idx = dictionary.pad(), dictionary.unk()
        self.output_dim = 2 * hidden_dim
        self.max_positions = max_positions
        self.word_dropout = word_dropout
        self.embed_tokens = word_embedding(dictionary, embed_dim, freeze_embeddings)
        input_dim = embed_dim
        if char_filters:
            characters, num_characters = word_characters(dictionary)
            self.register_buffer("word_characters", characters, persistent=False)
            self.char_cnn = CharacterCNN(num_characters, char_embed_dim, char_filters, char_kernel_width)
            input_dim += char_filters
            self.highway = Highway(input_dim, HIGHWAY_LAYERS)
        self.lstm = nn.LSTM(input_dim, hidden_dim, num_layers=layers, bidirectional=True, batch_first=True,
                            dropout=dropout if layers > 1 else 0.0)
        self.dropout = nn.Dropout(dropout)

    def forward(self, src_tokens):
        padding = src_tokens.eq(self.padding_idx)
        if self.training and self.word_dropout > 0:
            dropped = torch.rand(src_tokens.shape, device=src_tokens.device) < self.word_dropout
            src_tokens = src_tokens.masked_fill(dropped & ~padding, self.unk_idx)
        lengths = (~padding).sum(1)
        x = self.embed_tokens(src_tokens)
        if hasattr(self, "char_cnn"):
            characters = self.word_characters[src_tokens].long()  # (B, T, W)
            features = self.char_cnn(characters.flatten(0, 1)).view(*src_tokens.shape, -1)
            x = self.highway(torch.cat([x, features], -1))
        x = self.dropout(x)
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu().clamp(min=1), batch_first=True, enforce_sorted=False)
        states, _ = self.lstm(packed)
        states, _ = nn.utils.rnn.pad_packed_sequence(states, batch_first=True, total_length=src_tokens.size(1))
        return self.dropout(states).masked_fill(padding.unsqueeze(-1), 0), padding


ENCODER_TYPES = ("bilstm", "transformer")


@dataclass
class TokenEncoderConfig(FairseqDataclass):
    """The options of ``build_token_encoder``; a model's config inherits them."""

    encoder_type: str = choice_field("bilstm", ENCODER_TYPES, "per-token encoder")
    encoder_embed_dim: int = field(default=100, metadata={"help": "word embedding size (transformer: model width)"})
    encoder_hidden_dim: int = field(default=100, metadata={"help": "bilstm: units per direction"})
    encoder_layers: int = bounded_field(2, ">= 1", "encoder layers")
    encoder_ffn_embed_dim: int = field(default=256, metadata={"help": "transformer: feed-forward inner size"})
    encoder_attention_heads: int = field(default=4, metadata={"help": "transformer: attention heads"})
    dropout: float = field(default=0.3, metadata={"help": "dropout on embeddings and encoder outputs"})
    attention_dropout: float = field(default=0.0, metadata={"help": "transformer: dropout on attention weights"})
    word_dropout: float = bounded_field(0.05, "[0, 1)", "bilstm: training tokens replaced by <unk>")
    max_positions: int = field(default=512, metadata={"help": "longest sentence in tokens"})
    freeze_word_embeddings: bool = field(default=False, metadata={
        "help": "keep the pretrained word vectors fixed (without a vector file: every word embedding)"})
    char_filters: int = bounded_field(0, ">= 0", "bilstm: filters of the character CNN added to each word vector, "
                                      "with two highway layers (0: no character features)")
    char_embed_dim: int = bounded_field(30, ">= 1", "bilstm: character embedding size (with --char-filters)")
    char_kernel_width: int = bounded_field(3, ">= 1", "bilstm: character CNN width, odd (with --char-filters)")


def build_token_encoder(cfg, dictionary):
    """The per-token encoder named by ``cfg.encoder_type`` (a ``TokenEncoderConfig``)."""
    check_options(cfg, TokenEncoderConfig)
    freeze = cfg.freeze_word_embeddings
    if cfg.encoder_type == "bilstm":
        if cfg.char_filters and cfg.char_kernel_width % 2 == 0:
            raise ConfigError(f"--char-kernel-width must be odd (got {cfg.char_kernel_width})")
        return BiLSTMTokenEncoder(dictionary, cfg.encoder_embed_dim, cfg.encoder_hidden_dim, cfg.encoder_layers,
                                  cfg.dropout, cfg.word_dropout, cfg.max_positions, freeze, cfg.char_embed_dim,
                                  cfg.char_filters, cfg.char_kernel_width)
    if cfg.char_filters:
        raise ConfigError("--char-filters needs --encoder-type bilstm (the transformer's width is its word vectors')")
    return TransformerTokenEncoder(dictionary, cfg.encoder_embed_dim, cfg.encoder_ffn_embed_dim, cfg.encoder_layers,
                                   cfg.encoder_attention_heads, cfg.dropout, cfg.attention_dropout, cfg.max_positions,
                                   freeze)


def init_word_embeddings(encoder, dictionary, cfg):
    """Copy the pretrained vectors of ``dictionary`` (``PretrainedWords``) into ``encoder``'s
    embeddings; call it when training starts (a checkpoint already holds them). Without them,
    ``--freeze-word-embeddings`` fixes every word embedding."""
    embedding = encoder.embed_tokens
    if getattr(dictionary, "vectors", None) is not None:
        if dictionary.vectors.shape[1] != embedding.embedding_dim:
            raise ConfigError(f"--word-embeddings has {dictionary.vectors.shape[1]}-d vectors, but "
                              f"--encoder-embed-dim is {embedding.embedding_dim}; make them equal")
        with torch.no_grad():
            embedding.pretrained.copy_(torch.from_numpy(dictionary.vectors))
    elif cfg.freeze_word_embeddings:
        embedding.weight.requires_grad_(False)
