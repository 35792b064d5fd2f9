"""The transformer family every method of this package extends.

``composable_transformer`` is fairseq's ``transformer`` (same flags, same
parameter names, same outputs with ``post_ln``) with options that compose:

- residual scheme per stack: ``--encoder-residual`` / ``--decoder-residual`` in
  ``post_ln | pre_ln | b2t`` (modules/b2t.py), and ``--b2t-rescale-init``.

Seams for the other methods, so they land as modules and not as forks:
``build_embedding`` (token embeddings), ``ComposableTransformerEncoder`` /
``ComposableTransformerDecoder`` (positions and layers of each stack) and
``initialize_parameters`` (initialisation schemes, run once at build time).
Named presets (``b2t_transformer``, ...) only set defaults.
"""

from dataclasses import dataclass, field

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
from fairseq_plugins.modules.b2t import RESIDUAL_SCHEMES, rescale_init_

MODEL_NAME = "composable_transformer"


SCHEME_CHOICES = ", ".join(RESIDUAL_SCHEMES)


@dataclass
class ComposableTransformerOptions(FairseqDataclass):
    # Plain strings checked at build time: argparse's own choice check would bury its
    # one-line error under fairseq's 170-line usage text.
    encoder_residual: str = field(
        default="post_ln",
        metadata={
            "help": f"residual scheme of every encoder layer, one of {SCHEME_CHOICES}: post_ln (fairseq's "
            "default), pre_ln (LN inside the branch, one LN after the stack) or b2t (Post-LN plus the "
            "layer input added before the layer's last LN)"
        },
    )
    decoder_residual: str = field(
        default="post_ln", metadata={"help": f"residual scheme of every decoder layer, one of {SCHEME_CHOICES}"}
    )
    b2t_rescale_init: bool = field(
        default=False,
        metadata={
            "help": "multiply every non-LayerNorm weight matrix of each layer by N**-0.5 at init "
            "(N = depth of its stack), as the B2T authors' code; applies whatever the residual scheme"
        },
    )


def validate_residual_options(args):
    """Reject unknown schemes and Pre-LN flags that contradict the chosen scheme."""
    for stack in ("encoder", "decoder"):
        scheme = getattr(args, f"{stack}_residual")
        if scheme not in RESIDUAL_SCHEMES:
            raise ConfigError(
                f"--{stack}-residual must be one of {SCHEME_CHOICES} (got {scheme!r})"
            )
        if getattr(args, f"{stack}_normalize_before", False) and scheme != "pre_ln":
            raise ConfigError(
                f"--{stack}-normalize-before conflicts with --{stack}-residual {scheme}; "
                f"use --{stack}-residual pre_ln for a Pre-LN {stack}"
            )


def wrap_layer(layer, cfg):
    """Activation checkpointing and FSDP wrapping, as fairseq does for its own layers."""
    if cfg.checkpoint_activations:
        layer = checkpoint_wrapper(layer, offload_to_cpu=cfg.offload_activations)
    min_params_to_wrap = 0 if cfg.checkpoint_activations else cfg.min_params_to_wrap
    return fsdp_wrap(layer, min_num_params=min_params_to_wrap)


class ComposableTransformerEncoder(TransformerEncoderBase):
    def build_encoder_layer(self, cfg):
        layer_class = B2TEncoderLayer if cfg.encoder_residual == "b2t" else TransformerEncoderLayerBase
        return wrap_layer(layer_class(cfg, return_fc=self.return_fc), cfg)


class ComposableTransformerDecoder(TransformerDecoderBase):
    def build_decoder_layer(self, cfg, no_encoder_attn=False):
        layer_class = B2TDecoderLayer if cfg.decoder_residual == "b2t" else TransformerDecoderLayerBase
        return wrap_layer(layer_class(cfg, no_encoder_attn), cfg)


@register_model(MODEL_NAME)
class ComposableTransformerModel(TransformerModel):
    @classmethod
    def add_args(cls, parser):
        super().add_args(parser)
        gen_parser_from_dataclass(parser, ComposableTransformerOptions(), delete_default=True)

    @classmethod
    def build_model(cls, args, task):
        composable_transformer(args)  # checkpoints of older versions lack newer options
        validate_residual_options(args)
        # fairseq's own Pre-LN path (LN inside the branch, final LN after the stack).
        args.encoder_normalize_before = args.encoder_residual == "pre_ln"
        args.decoder_normalize_before = args.decoder_residual == "pre_ln"
        model = super().build_model(args, task)
        cls.initialize_parameters(model, args)
        return model

    @classmethod
    def initialize_parameters(cls, model, args):
        """Initialisation schemes applied on top of fairseq's, once, at build time."""
        if args.b2t_rescale_init:
            for stack in (model.encoder, model.decoder):
                for layer in stack.layers:
                    rescale_init_(layer, depth=len(stack.layers))

    @classmethod
    def build_encoder(cls, args, src_dict, embed_tokens):
        return ComposableTransformerEncoder(TransformerConfig.from_namespace(args), src_dict, embed_tokens)

    @classmethod
    def build_decoder(cls, args, tgt_dict, embed_tokens):
        cfg = TransformerConfig.from_namespace(args)
        return ComposableTransformerDecoder(cfg, tgt_dict, embed_tokens, no_encoder_attn=cfg.no_cross_attention)


@register_model_architecture(MODEL_NAME, MODEL_NAME)
def composable_transformer(args):
    # Without an explicit scheme, fairseq's --*-normalize-before keeps its meaning.
    for stack in ("encoder", "decoder"):
        pre_ln = getattr(args, f"{stack}_normalize_before", False)
        setattr(args, f"{stack}_residual", getattr(args, f"{stack}_residual", "pre_ln" if pre_ln else "post_ln"))
    args.b2t_rescale_init = getattr(args, "b2t_rescale_init", False)
    base_architecture(args)


def register_b2t_preset(name, stock_architecture):
    """``name`` = fairseq's ``stock_architecture`` dims with B2T in both stacks."""

    def preset(args):
        args.encoder_residual = getattr(args, "encoder_residual", "b2t")
        args.decoder_residual = getattr(args, "decoder_residual", "b2t")
        stock_architecture(args)
        composable_transformer(args)

    preset.__name__ = name
    preset.__doc__ = register_b2t_preset.__doc__.replace("``name``", name).replace(
        "``stock_architecture``", stock_architecture.__name__
    )
    register_model_architecture(MODEL_NAME, name)(preset)


register_b2t_preset("b2t_transformer", base_architecture)
register_b2t_preset("b2t_transformer_iwslt_de_en", transformer_iwslt_de_en)
register_b2t_preset("b2t_transformer_wmt_en_de", transformer_wmt_en_de)
register_b2t_preset("b2t_transformer_wmt_en_de_big", transformer_wmt_en_de_big)
