"""The transformer family every method of this package extends.

``composable_transformer`` is fairseq's ``transformer`` (same flags, same
parameter names, same outputs with the defaults) with options that compose:

- residual scheme per stack: ``--encoder-residual`` / ``--decoder-residual`` in
  ``post_ln | pre_ln | b2t`` (modules/b2t.py), and ``--b2t-rescale-init``;
- positions: ``--positions sinusoidal | learned | shape | relative`` (modules/shape.py,
  modules/relative_attention.py);
- token embeddings: ``--embeddings standard | alone`` (modules/alone.py);
- initialisation and embedding treatment (Spike No More): ``--init-scheme fairseq | small``,
  ``--embed-treatment vanilla | scaled | layernorm | detach``, ``--embed-init-std``
  (modules/spike_init.py).

Seams for the other methods, so they land as modules and not as forks:
``build_embedding`` (token embeddings), ``ComposableTransformerEncoder`` /
``ComposableTransformerDecoder`` (positions, layers and output projection of each
stack) and ``initialize_parameters`` (initialisation schemes, run once at build
time). The options live in ``transformer_options.py``; the named presets (``b2t_transformer``,
``shape_transformer``, ...) in ``transformer_presets.py``, and only set defaults.
"""

import torch.nn.functional as F
from torch import nn

from fairseq.dataclass.utils import gen_parser_from_dataclass
from fairseq.distributed import fsdp_wrap
from fairseq.models import register_model, register_model_architecture
from fairseq.models.transformer import (
    TransformerConfig,
    TransformerDecoderBase,
    TransformerEncoderBase,
    TransformerModel,
    base_architecture,
)
from fairseq.modules.checkpoint_activations import checkpoint_wrapper
from fairseq.modules.transformer_layer import (
    TransformerDecoderLayerBase,
    TransformerEncoderLayerBase,
)

from fairseq_plugins.errors import ConfigError
from fairseq_plugins.models.b2t_layers import B2TDecoderLayer, B2TEncoderLayer
from fairseq_plugins.models.relative_multihead_attention import RelativeMultiheadAttention
from fairseq_plugins.models.transformer_options import (
    ComposableTransformerOptions,
    fairseq_build_args,
    option_defaults,
    validate_options,
)
from fairseq_plugins.modules.alone import AloneEmbedding
from fairseq_plugins.modules.b2t import rescale_init_
from fairseq_plugins.modules.length_positions import (
    LENGTH_ENCODINGS,
    WITH_SINUSOIDAL,
    LengthControlledPositions,
    SummedPositions,
    token_character_counts,
    token_counts,
)
from fairseq_plugins.modules.relative_attention import RelativeAttention
from fairseq_plugins.modules.shape import ShiftedSinusoidalPositions
from fairseq_plugins.modules.spike_init import EmbeddingTreatment, init_embedding_, small_init_, small_std
from fairseq_plugins.optimizer_groups import exempt_from_weight_decay

MODEL_NAME = "composable_transformer"


def module_errors_as_config_errors(build, *args, **kwargs):
    """Modules reject bad values with a ValueError naming the flag; show it as one line."""
    try:
        return build(*args, **kwargs)
    except ValueError as error:
        raise ConfigError(str(error)) from None


def build_positions(cfg, stack, padding_idx, embed_dim):
    max_positions = cfg.max_source_positions if stack == "encoder" else cfg.max_target_positions
    return module_errors_as_config_errors(
        ShiftedSinusoidalPositions, embed_dim, padding_idx, max_positions, cfg.shape_max_shift, cfg.shape_eval_offset
    )


def with_relative_self_attention(layer, cfg, heads):
    """``--positions relative``: ``layer``'s self-attention becomes Shaw et al.'s, built with the
    arguments fairseq's ``build_self_attention`` uses. Swapped in after the layer is built, so each
    residual scheme keeps one layer class instead of one per position kind."""
    if cfg.positions == "relative":
        layer.self_attn = module_errors_as_config_errors(
            RelativeMultiheadAttention, layer.embed_dim, heads, cfg.relative_max_distance,
            dropout=cfg.attention_dropout, q_noise=layer.quant_noise, qn_block_size=layer.quant_noise_block_size,
        )
    return layer


def wrap_layer(layer, cfg):
    """Activation checkpointing and FSDP wrapping, as fairseq does for its own layers."""
    if cfg.checkpoint_activations:
        layer = checkpoint_wrapper(layer, offload_to_cpu=cfg.offload_activations)
    min_params_to_wrap = 0 if cfg.checkpoint_activations else cfg.min_params_to_wrap
    return fsdp_wrap(layer, min_num_params=min_params_to_wrap)


class TreatmentAsEmbedScale(EmbeddingTreatment):
    """fairseq computes ``embed_scale * embed_tokens(tokens)`` in both stacks; standing in for
    that factor, a treatment applies exactly there without forking fairseq's forward."""

    def __mul__(self, embeddings):
        return self(embeddings)


def build_length_positions(cfg, dictionary, embed_dim, sinusoidal_positions):
    """``--positions lrpe/ldpe``: the length encoding; ``lrpe+pe/ldpe+pe``: it plus ``sinusoidal_positions``."""
    specials = [dictionary.bos(), dictionary.pad(), dictionary.eos(), dictionary.unk()]
    if cfg.length_unit == "chars":
        amounts = token_character_counts(dictionary.symbols, specials)
    else:
        amounts = token_counts(len(dictionary), specials)
    encoding = cfg.positions.removesuffix(WITH_SINUSOIDAL)
    length_positions = module_errors_as_config_errors(
        LengthControlledPositions, embed_dim, dictionary.pad(), cfg.max_target_positions, encoding, amounts
    )
    if cfg.positions.endswith(WITH_SINUSOIDAL):
        return SummedPositions(sinusoidal_positions, length_positions)
    return length_positions


def treat_embeddings(stack, cfg, dim):
    """Install the embedding treatment of ``cfg`` on an encoder or decoder (vanilla and scaled
    are fairseq's own ``--no-scale-embedding`` switch, set in ``build_model``)."""
    if cfg.embed_treatment in ("layernorm", "detach"):
        stack.embed_scale = module_errors_as_config_errors(
            TreatmentAsEmbedScale, cfg.embed_treatment, dim, cfg.embed_detach_alpha
        )


class ComposableTransformerEncoder(TransformerEncoderBase):
    def __init__(self, cfg, dictionary, embed_tokens, return_fc=False):
        super().__init__(cfg, dictionary, embed_tokens, return_fc)
        if cfg.positions == "shape" and self.embed_positions is not None:
            self.embed_positions = build_positions(cfg, "encoder", self.padding_idx, embed_tokens.embedding_dim)
        treat_embeddings(self, cfg, embed_tokens.embedding_dim)

    def build_encoder_layer(self, cfg):
        layer_class = B2TEncoderLayer if cfg.encoder_residual == "b2t" else TransformerEncoderLayerBase
        layer = layer_class(cfg, return_fc=self.return_fc)
        layer = with_relative_self_attention(layer, cfg, cfg.encoder.attention_heads)
        return wrap_layer(layer, cfg)


class ComposableTransformerDecoder(TransformerDecoderBase):
    def __init__(self, cfg, dictionary, embed_tokens, no_encoder_attn=False, output_projection=None):
        super().__init__(cfg, dictionary, embed_tokens, no_encoder_attn, output_projection)
        if cfg.positions == "shape" and self.embed_positions is not None:
            self.embed_positions = build_positions(cfg, "decoder", self.padding_idx, self.embed_dim)
        if cfg.positions.removesuffix(WITH_SINUSOIDAL) in LENGTH_ENCODINGS:
            self.embed_positions = build_length_positions(cfg, dictionary, self.embed_dim, self.embed_positions)
        treat_embeddings(self, cfg, embed_tokens.embedding_dim)

    def build_decoder_layer(self, cfg, no_encoder_attn=False):
        layer_class = B2TDecoderLayer if cfg.decoder_residual == "b2t" else TransformerDecoderLayerBase
        layer = layer_class(cfg, no_encoder_attn)
        layer = with_relative_self_attention(layer, cfg, cfg.decoder.attention_heads)
        return wrap_layer(layer, cfg)

    def build_output_projection(self, cfg, dictionary, embed_tokens):
        if self.share_input_output_embed and isinstance(embed_tokens, AloneEmbedding):
            self.output_projection = TiedAloneProjection(embed_tokens)
        else:
            super().build_output_projection(cfg, dictionary, embed_tokens)


class TiedAloneProjection(nn.Module):
    """Output projection tied to ALONE embeddings: ``features @ E^T`` with ``E = embedding.embedding_matrix()``,
    recomputed in vocabulary chunks at every training forward, computed once in evaluation (modules/alone.py)."""

    def __init__(self, embedding):
        super().__init__()
        self.embedding = embedding

    def forward(self, features):
        # One (tokens, d) x (d, V) product. Given (tokens, 1, d) features from incremental decoding
        # and a matrix without autograd, F.linear would run a batched product of tokens single rows.
        logits = F.linear(features.reshape(-1, features.size(-1)), self.embedding.embedding_matrix())
        return logits.view(*features.shape[:-1], -1)


def initialize_parameters(stacks, args):
    """Initialisation schemes applied on top of fairseq's, once, at build time, to the
    ``stacks`` (encoder and decoder, or a language model's decoder alone)."""
    if args.init_scheme == "small":
        for stack in stacks:
            small_init_(stack.layers, dim=stack.embed_tokens.embedding_dim)
    embed_std = args.embed_init_std
    if embed_std is None and args.init_scheme == "small":
        embed_std = small_std(stacks[0].embed_tokens.embedding_dim)
    # ALONE embeddings have their own initialisation (modules/alone.py).
    if embed_std is not None and args.embeddings == "standard":
        for embedding in {stack.embed_tokens for stack in stacks}:  # once when shared
            module_errors_as_config_errors(init_embedding_, embedding.weight.data, embed_std, embedding.padding_idx)
    if args.b2t_rescale_init:
        for stack in stacks:
            for layer in stack.layers:
                rescale_init_(layer, depth=len(stack.layers))
    if args.no_weight_decay_embeddings:
        exempt_from_weight_decay(module for stack in stacks for module in (stack.embed_tokens, stack.embed_positions))
        exempt_from_weight_decay(module for stack in stacks for module in stack.layers.modules()
                                 if isinstance(module, RelativeAttention))  # --positions relative's embeddings


def build_token_embedding(args, dictionary, embed_dim, build_standard):
    """``--embeddings``: ALONE, or what ``build_standard()`` (fairseq's own builder) returns."""
    if args.embeddings == "standard":
        return build_standard()
    return module_errors_as_config_errors(
        AloneEmbedding, len(dictionary), embed_dim, dictionary.pad(), filter_kind=args.alone_filter,
        codebooks=args.alone_codebooks, codes=args.alone_codes, inter_dim=args.alone_inter_dim,
        ffn_layers=args.alone_ffn_layers, filter_dropout=args.alone_dropout, std=args.alone_std,
        relu_dropout=args.alone_relu_dropout, relu_dropout_off_after=args.alone_relu_dropout_off_after,
        # Filters come from --seed; they are buffers, so a checkpoint restores them exactly.
        seed=getattr(args, "seed", 1),
    )


@register_model(MODEL_NAME)
class ComposableTransformerModel(TransformerModel):
    @classmethod
    def add_args(cls, parser):
        super().add_args(parser)
        gen_parser_from_dataclass(parser, ComposableTransformerOptions(), delete_default=True)

    @classmethod
    def build_model(cls, args, task):
        option_defaults(args)  # checkpoints of older versions lack newer options
        validate_options(args)
        if args.share_all_embeddings and task.source_dictionary != task.target_dictionary:
            raise ConfigError("--share-all-embeddings needs one dictionary for both sides (fairseq-preprocess --joined-dictionary)")
        model = super().build_model(fairseq_build_args(args), task)
        initialize_parameters((model.encoder, model.decoder), args)
        return model

    @classmethod
    def build_embedding(cls, args, dictionary, embed_dim, path=None):
        if path and args.embeddings == "alone":
            raise ConfigError("--encoder-embed-path/--decoder-embed-path cannot initialise --embeddings alone")
        build_standard = super().build_embedding
        return build_token_embedding(args, dictionary, embed_dim, lambda: build_standard(args, dictionary, embed_dim, path))

    @classmethod
    def build_encoder(cls, args, src_dict, embed_tokens):
        return ComposableTransformerEncoder(TransformerConfig.from_namespace(args), src_dict, embed_tokens)

    @classmethod
    def build_decoder(cls, args, tgt_dict, embed_tokens):
        cfg = TransformerConfig.from_namespace(args)
        return ComposableTransformerDecoder(cfg, tgt_dict, embed_tokens, no_encoder_attn=cfg.no_cross_attention)


@register_model_architecture(MODEL_NAME, MODEL_NAME)
def composable_transformer(args):
    option_defaults(args)
    base_architecture(args)
