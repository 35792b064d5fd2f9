"""The options of the composable transformer family, declared once.

Each option is a field of ``ComposableTransformerOptions``; choice options carry their allowed
values in the field (``options.choice_field``), so the help text and the one-line error both
read them from there. Configuration flows in one direction:

1. ``option_defaults(args)`` (the architecture function, and model building for checkpoints that
   predate an option) fills every option the user did not give. Three have a fairseq flag of
   their own, which decides their default, and nothing else does: ``--encoder/decoder-normalize-before``
   -> ``--*-residual pre_ln``, ``--encoder/decoder-learned-pos`` -> ``--positions learned``,
   ``--no-scale-embedding`` -> ``--embed-treatment vanilla``.
2. ``validate_options(args)`` rejects bad values and contradictions in one line.
3. ``fairseq_build_args(args)`` is the copy of ``args`` that fairseq's own builders read, its
   flags derived from the options; ``args`` itself (what a checkpoint saves) is not written.
"""

import argparse
import dataclasses
from dataclasses import dataclass, field
from typing import Optional

from fairseq.dataclass import FairseqDataclass

from fairseq_plugins.errors import ConfigError
from fairseq_plugins.modules.alone import FILTER_KINDS
from fairseq_plugins.modules.b2t import RESIDUAL_SCHEMES
from fairseq_plugins.modules.length_positions import LENGTH_ENCODINGS, LENGTH_UNITS, WITH_SINUSOIDAL
from fairseq_plugins.modules.shape import EVAL_OFFSETS
from fairseq_plugins.modules.spike_init import EMBED_TREATMENTS, INIT_SCHEMES
from fairseq_plugins.options import check_options, choice_field, dataclass_defaults, set_defaults

# lrpe/ldpe are decoder encodings of the output length (modules/length_positions.py), in place of the
# decoder's sinusoidal positions or (+pe) added to them; the encoder keeps sinusoidal. relative: Shaw
# et al.'s relative positions in every self-attention (modules/relative_attention.py), no absolute ones.
POSITION_KINDS = (("sinusoidal", "learned", "shape", "relative") + LENGTH_ENCODINGS
                  + tuple(e + WITH_SINUSOIDAL for e in LENGTH_ENCODINGS))
EMBEDDING_KINDS = ("standard", "alone")
STACKS = ("encoder", "decoder")


# Choice options are plain strings checked at build time: argparse's own choice check
# would bury its one-line error under fairseq's 170-line usage text.
@dataclass
class ComposableTransformerOptions(FairseqDataclass):
    encoder_residual: str = choice_field(
        "post_ln", RESIDUAL_SCHEMES,
        "residual scheme of every encoder layer: post_ln (fairseq's default), pre_ln (LN inside the branch, one "
        "LN after the stack) or b2t (Post-LN plus the layer input added before the layer's last LN)",
    )
    decoder_residual: str = choice_field("post_ln", RESIDUAL_SCHEMES, "residual scheme of every decoder layer")
    b2t_rescale_init: bool = field(
        default=False,
        metadata={
            "help": "multiply every non-LayerNorm weight matrix of each layer by N**-0.5 at init "
            "(N = depth of its stack), as the B2T authors' code; applies whatever the residual scheme"
        },
    )
    positions: str = choice_field(
        "sinusoidal", POSITION_KINDS,
        "position embeddings of both stacks (shape: SHAPE; relative: Shaw et al.'s relative positions in every "
        "self-attention, no absolute ones; lrpe/ldpe: the decoder's encode the output length, "
        "the encoder's stay sinusoidal; lrpe+pe/ldpe+pe: that encoding added to the decoder's sinusoidal ones)",
    )
    relative_max_distance: int = field(
        default=16, metadata={"help": "--positions relative: k, distances beyond +-k share one embedding (>= 1)"}
    )
    shape_max_shift: int = field(
        default=40, metadata={"help": "SHAPE's K: training offsets are drawn per sequence from 0..K-1"}
    )
    length_unit: str = choice_field("tokens", LENGTH_UNITS, "--positions lrpe/ldpe: unit of the output length")
    shape_eval_offset: str = choice_field("max", EVAL_OFFSETS, "SHAPE's offset at evaluation (max: K, as the authors)")
    embeddings: str = choice_field("standard", EMBEDDING_KINDS, "token embeddings (alone: ALONE, one shared vector)")
    alone_filter: str = choice_field("binary", FILTER_KINDS, "ALONE filters")
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
    init_scheme: str = choice_field(
        "fairseq", INIT_SCHEMES,
        "initialisation of the layers (small: Spike No More's N(0, 2/(5d)), output projections further divided "
        "by sqrt(2N))",
    )
    embed_treatment: str = choice_field(
        "scaled", EMBED_TREATMENTS,
        "what the token embeddings go through before positions are added (scaled: x sqrt(d), fairseq's "
        "default; vanilla as --no-scale-embedding)",
    )
    embed_detach_alpha: float = field(
        default=0.1, metadata={"help": "detach treatment: a*e + (1-a)*e.detach(), a in [0, 1]"}
    )
    embed_init_std: Optional[float] = field(
        default=None,
        metadata={"help": "std of the token embeddings at init (default: fairseq's d**-0.5, or sqrt(2/(5d)) "
                  "with --init-scheme small); needs --embed-treatment vanilla or layernorm, whose inputs keep it"},
    )
    no_weight_decay_embeddings: bool = field(
        default=False,
        metadata={"help": "keep token and learned position embeddings out of --weight-decay (with any optimizer)"},
    )


OPTION_DEFAULTS = {f.name: f.default for f in dataclasses.fields(ComposableTransformerOptions)}


def option_defaults(args, stacks=STACKS):
    """Give ``args`` every option of the family it lacks; fairseq's own flags decide the default
    of the three options that have one."""
    for stack in stacks:
        pre_ln = getattr(args, f"{stack}_normalize_before", False)
        set_defaults(args, **{f"{stack}_residual": "pre_ln" if pre_ln else "post_ln"})
    learned = any(getattr(args, f"{stack}_learned_pos", False) for stack in stacks)
    set_defaults(args, positions="learned" if learned else "sinusoidal",
                 embed_treatment="vanilla" if getattr(args, "no_scale_embedding", False) else "scaled")
    dataclass_defaults(args, ComposableTransformerOptions)


def validate_options(args, stacks=STACKS):
    """One line per bad value, naming the flag and what is allowed (``stacks``: those the model has)."""
    other_stacks = {f"{stack}_residual" for stack in STACKS if stack not in stacks}
    check_options(args, ComposableTransformerOptions,
                  names=set(OPTION_DEFAULTS) - other_stacks)
    if getattr(args, "no_scale_embedding", False) and args.embed_treatment == "scaled":
        raise ConfigError("--no-scale-embedding conflicts with --embed-treatment scaled; use vanilla")
    if args.embed_init_std is not None and args.embeddings != "standard":
        raise ConfigError("--embed-init-std initialises standard embeddings only; drop it with --embeddings alone")
    if args.embed_init_std is not None and args.embed_treatment == "scaled":
        # The sqrt(d) factor would multiply the std asked for: std 1.0 would reach the first layer as sqrt(d).
        raise ConfigError(
            f"--embed-init-std {args.embed_init_std} with --embed-treatment scaled multiplies that std by sqrt(d); "
            "use --embed-treatment vanilla (Spike No More's std-1 embeddings) or layernorm"
        )
    if args.embeddings == "alone":
        validate_alone_output(args)
    if args.positions == "relative":
        if getattr(args, "cross_self_attention", False):
            # Its self-attention also attends to the encoder output, which has no distance to the target.
            raise ConfigError("--cross-self-attention conflicts with --positions relative; drop it or use "
                              "--positions sinusoidal, learned or shape")
        for stack in stacks:
            if getattr(args, f"{stack}_xformers_att_config", None):
                raise ConfigError(f"--{stack}-xformers-att-config conflicts with --positions relative; drop it")
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


def validate_alone_output(args):
    """fairseq's output builders that ALONE embeddings cannot take part in."""
    if getattr(args, "share_all_embeddings", False) or getattr(args, "share_decoder_input_output_embed", False):
        # The tied projection onto ALONE's table stands in for fairseq's output builder, which builds these.
        given = [f"--{name.replace('_', '-')}" for name in ("adaptive_softmax_cutoff", "base_layers")
                 if getattr(args, name, None)]
        if given:
            raise ConfigError(
                f"{' and '.join(given)} cannot be used with --embeddings alone and a tied output projection "
                "(--share-all-embeddings or --share-decoder-input-output-embed); drop them, or the sharing flag"
            )
    if getattr(args, "adaptive_softmax_cutoff", None) and getattr(args, "tie_adaptive_weights", False):
        raise ConfigError("--tie-adaptive-weights ties the adaptive softmax to --adaptive-input embeddings, "
                          "not to --embeddings alone; drop it")


def fairseq_build_args(args, stacks=STACKS):
    """A copy of ``args`` whose fairseq flags follow the options: fairseq's Pre-LN path (LN inside
    the branch, a final LN after the stack), its learned positions (none with relative ones) and its
    embedding scale."""
    build_args = argparse.Namespace(**vars(args))
    for stack in stacks:
        setattr(build_args, f"{stack}_normalize_before", getattr(args, f"{stack}_residual") == "pre_ln")
        setattr(build_args, f"{stack}_learned_pos", args.positions == "learned")
    build_args.no_scale_embedding = args.embed_treatment != "scaled"
    if args.positions == "relative":
        build_args.no_token_positional_embeddings = True
    return build_args
