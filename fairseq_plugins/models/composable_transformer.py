"""The transformer family every method of this package extends.

``composable_transformer`` is fairseq's ``transformer`` (same flags, same
parameter names, same outputs with the defaults) with options that compose:

- residual scheme per stack: ``--encoder-residual`` / ``--decoder-residual`` in
  ``post_ln | pre_ln | b2t`` (modules/b2t.py), and ``--b2t-rescale-init``;
- positions: ``--positions sinusoidal | learned | shape`` (modules/shape.py);
- token embeddings: ``--embeddings standard | alone`` (modules/alone.py);
- initialisation and embedding treatment (Spike No More): ``--init-scheme fairseq | small``,
  ``--embed-treatment vanilla | scaled | layernorm | detach``, ``--embed-init-std``
  (modules/spike_init.py).

Seams for the other methods, so they land as modules and not as forks:
``build_embedding`` (token embeddings), ``ComposableTransformerEncoder`` /
``ComposableTransformerDecoder`` (positions, layers and output projection of each
stack) and ``initialize_parameters`` (initialisation schemes, run once at build
time). Named presets (``b2t_transformer``, ``shape_transformer``, ...) only set defaults.
"""

import dataclasses
from dataclasses import dataclass, field
from typing import Optional

import torch.nn.functional as F
from torch import nn

from fairseq.dataclass import FairseqDataclass
from fairseq.dataclass.utils import gen_parser_from_dataclass
from fairseq.distributed import fsdp_wrap
from fairseq.models import register_model, register_model_architecture
from fairseq.models.transformer import (
    TransformerConfig,
    TransformerDecoderBase,
    TransformerEncoderBase,
    TransformerModel,
    base_architecture,
    transformer_iwslt_de_en,
    transformer_wmt_en_de,
    transformer_wmt_en_de_big,
)
from fairseq.modules.checkpoint_activations import checkpoint_wrapper
from fairseq.modules.transformer_layer import (
    TransformerDecoderLayerBase,
    TransformerEncoderLayerBase,
)

from fairseq_plugins.errors import ConfigError
from fairseq_plugins.models.b2t_layers import B2TDecoderLayer, B2TEncoderLayer
from fairseq_plugins.models.weight_decay import exempt_from_weight_decay
from fairseq_plugins.modules.alone import FILTER_KINDS, AloneEmbedding
from fairseq_plugins.modules.b2t import RESIDUAL_SCHEMES, rescale_init_
from fairseq_plugins.modules.length_positions import (
    LENGTH_ENCODINGS,
    LENGTH_UNITS,
    LengthControlledPositions,
    token_character_counts,
    token_counts,
)
from fairseq_plugins.modules.shape import EVAL_OFFSETS, ShiftedSinusoidalPositions
from fairseq_plugins.modules.spike_init import (
    EMBED_TREATMENTS,
    INIT_SCHEMES,
    EmbeddingTreatment,
    init_embedding_,
    small_init_,
    small_std,
)

MODEL_NAME = "composable_transformer"


# lrpe/ldpe are decoder encodings of the output length (modules/length_positions.py); the encoder keeps sinusoidal.
POSITION_KINDS = ("sinusoidal", "learned", "shape") + LENGTH_ENCODINGS
EMBEDDING_KINDS = ("standard", "alone")
STACKS = ("encoder", "decoder")


def one_of(choices):
    return ", ".join(choices)


# Choice options are plain strings checked at build time: argparse's own choice check
# would bury its one-line error under fairseq's 170-line usage text.
@dataclass
class ComposableTransformerOptions(FairseqDataclass):
    encoder_residual: str = field(
        default="post_ln",
        metadata={
            "help": f"residual scheme of every encoder layer, one of {one_of(RESIDUAL_SCHEMES)}: post_ln "
            "(fairseq's default), pre_ln (LN inside the branch, one LN after the stack) or b2t (Post-LN plus "
            "the layer input added before the layer's last LN)"
        },
    )
    decoder_residual: str = field(
        default="post_ln", metadata={"help": f"residual scheme of every decoder layer, one of {one_of(RESIDUAL_SCHEMES)}"}
    )
    b2t_rescale_init: bool = field(
        default=False,
        metadata={
            "help": "multiply every non-LayerNorm weight matrix of each layer by N**-0.5 at init "
            "(N = depth of its stack), as the B2T authors' code; applies whatever the residual scheme"
        },
    )
    positions: str = field(
        default="sinusoidal",
        metadata={"help": f"position embeddings of both stacks, one of {one_of(POSITION_KINDS)} (shape: SHAPE; "
                  "lrpe/ldpe: the decoder's encode the output length, the encoder's stay sinusoidal)"},
    )
    shape_max_shift: int = field(
        default=40, metadata={"help": "SHAPE's K: training offsets are drawn per sequence from 0..K-1"}
    )
    length_unit: str = field(
        default="tokens",
        metadata={"help": f"--positions lrpe/ldpe: unit of the output length, one of {one_of(LENGTH_UNITS)}"},
    )
    shape_eval_offset: str = field(
        default="max",
        metadata={"help": f"SHAPE's offset at evaluation, one of {one_of(EVAL_OFFSETS)} (max: K, as the authors)"},
    )
    embeddings: str = field(
        default="standard",
        metadata={"help": f"token embeddings, one of {one_of(EMBEDDING_KINDS)} (alone: ALONE, one shared vector)"},
    )
    alone_filter: str = field(default="binary", metadata={"help": f"ALONE filters, one of {one_of(FILTER_KINDS)}"})
    alone_codebooks: int = field(default=8, metadata={"help": "ALONE: number of codebooks M"})
    alone_codes: int = field(default=64, metadata={"help": "ALONE: codes per codebook c"})
    alone_inter_dim: Optional[int] = field(default=None, metadata={"help": "ALONE: FFN inner dimension"})
    alone_ffn_layers: int = field(default=2, metadata={"help": "ALONE: bias-free linear maps in the FFN"})
    alone_dropout: float = field(
        default=0.5, metadata={"help": "ALONE: binary filters are 0 with this probability p, in (0, 1)"}
    )
    alone_std: float = field(default=1.0, metadata={"help": "ALONE: std of real filters"})
    alone_relu_dropout: float = field(default=0.0, metadata={"help": "ALONE: dropout after the FFN's ReLU"})
    alone_relu_dropout_off_after: Optional[int] = field(
        default=None, metadata={"help": "ALONE: switch the ReLU dropout off after this many updates"}
    )
    init_scheme: str = field(
        default="fairseq",
        metadata={"help": f"initialisation of the layers, one of {one_of(INIT_SCHEMES)} (small: Spike No More's "
                  "N(0, 2/(5d)), output projections further divided by sqrt(2N))"},
    )
    embed_treatment: str = field(
        default="scaled",
        metadata={"help": f"what the token embeddings go through before positions are added, one of "
                  f"{one_of(EMBED_TREATMENTS)} (scaled: x sqrt(d), fairseq's default; vanilla as "
                  "--no-scale-embedding)"},
    )
    embed_detach_alpha: float = field(
        default=0.1, metadata={"help": "detach treatment: a*e + (1-a)*e.detach(), a in [0, 1]"}
    )
    embed_init_std: Optional[float] = field(
        default=None,
        metadata={"help": "std of the token embeddings at init (default: fairseq's d**-0.5, or sqrt(2/(5d)) "
                  "with --init-scheme small)"},
    )
    no_weight_decay_embeddings: bool = field(
        default=False,
        metadata={"help": "keep token and learned position embeddings out of --weight-decay (with any optimizer)"},
    )


OPTION_DEFAULTS = {f.name: f.default for f in dataclasses.fields(ComposableTransformerOptions)}


def validate_options(args, stacks=STACKS):
    """One line per bad value, naming the flag and what is allowed (``stacks``: those the model has)."""
    choices = {"positions": POSITION_KINDS, "shape_eval_offset": EVAL_OFFSETS, "embeddings": EMBEDDING_KINDS,
               "length_unit": LENGTH_UNITS,
               "alone_filter": FILTER_KINDS, "init_scheme": INIT_SCHEMES, "embed_treatment": EMBED_TREATMENTS}
    choices.update({f"{stack}_residual": RESIDUAL_SCHEMES for stack in stacks})
    for name, allowed in choices.items():
        if getattr(args, name) not in allowed:
            flag = "--" + name.replace("_", "-")
            raise ConfigError(f"{flag} must be one of {one_of(allowed)} (got {getattr(args, name)!r})")
    if getattr(args, "no_scale_embedding", False) and args.embed_treatment == "scaled":
        raise ConfigError("--no-scale-embedding conflicts with --embed-treatment scaled; use vanilla")
    if args.embed_init_std is not None and args.embeddings != "standard":
        raise ConfigError("--embed-init-std initialises standard embeddings only; drop it with --embeddings alone")
    for stack in stacks:
        scheme = getattr(args, f"{stack}_residual")
        if getattr(args, f"{stack}_normalize_before", False) and scheme != "pre_ln":
            raise ConfigError(
                f"--{stack}-normalize-before conflicts with --{stack}-residual {scheme}; "
                f"use --{stack}-residual pre_ln for a Pre-LN {stack}"
            )
        if getattr(args, f"{stack}_learned_pos", False) and args.positions != "learned":
            raise ConfigError(
                f"--{stack}-learned-pos conflicts with --positions {args.positions}; use --positions learned"
            )


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


def build_length_positions(cfg, dictionary, embed_dim):
    specials = [dictionary.bos(), dictionary.pad(), dictionary.eos(), dictionary.unk()]
    if cfg.length_unit == "chars":
        amounts = token_character_counts(dictionary.symbols, specials)
    else:
        amounts = token_counts(len(dictionary), specials)
    return module_errors_as_config_errors(
        LengthControlledPositions, embed_dim, dictionary.pad(), cfg.max_target_positions, cfg.positions, amounts
    )


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
        return wrap_layer(layer_class(cfg, return_fc=self.return_fc), cfg)


class ComposableTransformerDecoder(TransformerDecoderBase):
    def __init__(self, cfg, dictionary, embed_tokens, no_encoder_attn=False, output_projection=None):
        super().__init__(cfg, dictionary, embed_tokens, no_encoder_attn, output_projection)
        if cfg.positions == "shape" and self.embed_positions is not None:
            self.embed_positions = build_positions(cfg, "decoder", self.padding_idx, self.embed_dim)
        if cfg.positions in LENGTH_ENCODINGS:
            self.embed_positions = build_length_positions(cfg, dictionary, self.embed_dim)
        treat_embeddings(self, cfg, embed_tokens.embedding_dim)

    def build_decoder_layer(self, cfg, no_encoder_attn=False):
        layer_class = B2TDecoderLayer if cfg.decoder_residual == "b2t" else TransformerDecoderLayerBase
        return wrap_layer(layer_class(cfg, no_encoder_attn), cfg)

    def build_output_projection(self, cfg, dictionary, embed_tokens):
        if self.share_input_output_embed and isinstance(embed_tokens, AloneEmbedding):
            self.output_projection = TiedAloneProjection(embed_tokens)
        else:
            super().build_output_projection(cfg, dictionary, embed_tokens)


class TiedAloneProjection(nn.Module):
    """Output projection tied to ALONE embeddings: the V x d matrix is recomputed at every forward."""

    def __init__(self, embedding):
        super().__init__()
        self.embedding = embedding

    def forward(self, features):
        return F.linear(features, self.embedding.embedding_matrix())


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
        composable_transformer(args)  # checkpoints of older versions lack newer options
        validate_options(args)
        if args.share_all_embeddings and task.source_dictionary != task.target_dictionary:
            raise ConfigError("--share-all-embeddings needs one dictionary for both sides (fairseq-preprocess --joined-dictionary)")
        for stack in STACKS:
            # fairseq's own Pre-LN path (LN inside the branch, final LN after the stack)
            # and learned positions.
            setattr(args, f"{stack}_normalize_before", getattr(args, f"{stack}_residual") == "pre_ln")
            setattr(args, f"{stack}_learned_pos", args.positions == "learned")
        args.no_scale_embedding = args.embed_treatment != "scaled"
        model = super().build_model(args, task)
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
    # Without an explicit choice, fairseq's own flags keep their meaning.
    for stack in STACKS:
        pre_ln = getattr(args, f"{stack}_normalize_before", False)
        setattr(args, f"{stack}_residual", getattr(args, f"{stack}_residual", "pre_ln" if pre_ln else "post_ln"))
    learned = getattr(args, "encoder_learned_pos", False) or getattr(args, "decoder_learned_pos", False)
    args.positions = getattr(args, "positions", "learned" if learned else "sinusoidal")
    unscaled = getattr(args, "no_scale_embedding", False)
    args.embed_treatment = getattr(args, "embed_treatment", "vanilla" if unscaled else "scaled")
    for name, default in OPTION_DEFAULTS.items():
        setattr(args, name, getattr(args, name, default))
    base_architecture(args)


def register_preset(name, stock_architecture, summary, **defaults):
    """Register ``name``: fairseq's ``stock_architecture`` dims with ``defaults`` for our options."""

    def preset(args):
        for option, value in defaults.items():
            setattr(args, option, getattr(args, option, value))
        stock_architecture(args)
        composable_transformer(args)

    preset.__name__ = name
    preset.__doc__ = f"{summary}, {stock_architecture.__name__} dims; defaults {defaults}"
    register_model_architecture(MODEL_NAME, name)(preset)


B2T = dict(encoder_residual="b2t", decoder_residual="b2t")
register_preset("b2t_transformer", base_architecture, "B2T in both stacks", **B2T)
register_preset("b2t_transformer_iwslt_de_en", transformer_iwslt_de_en, "B2T in both stacks", **B2T)
register_preset("b2t_transformer_wmt_en_de", transformer_wmt_en_de, "B2T in both stacks", **B2T)
register_preset("b2t_transformer_wmt_en_de_big", transformer_wmt_en_de_big, "B2T in both stacks", **B2T)

SHAPE = dict(positions="shape", shape_max_shift=40)
register_preset("shape_transformer", base_architecture, "SHAPE positions, K=40", **SHAPE)
register_preset("shape_transformer_wmt_en_de", transformer_wmt_en_de, "SHAPE positions, K=40", **SHAPE)

# The ALONE paper's WMT En-De setting: binary filters, FFN inner dimension 8192.
register_preset("alone_transformer", base_architecture, "ALONE embeddings", embeddings="alone")
register_preset("alone_transformer_wmt_en_de", transformer_wmt_en_de, "ALONE embeddings (binary, D_inter 8192)",
                embeddings="alone", alone_filter="binary", alone_inter_dim=8192)
