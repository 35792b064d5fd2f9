"""``composable_transformer_lm``: the decoder-only language model of the composable family.

fairseq's ``transformer_lm`` (same flags, same parameter names, same defaults) whose decoder
is the family's ``ComposableTransformerDecoder``, so every decoder option composes here too:
``--decoder-residual``, ``--positions``, ``--embeddings``, and the Spike No More options
``--init-scheme``, ``--embed-treatment``, ``--embed-init-std``, ``--no-weight-decay-embeddings``.
Use it with ``--task language_modeling`` (or ``monitored_language_modeling``). One difference:
``--decoder-input-dim`` and ``--decoder-output-dim`` follow ``--decoder-embed-dim``.

The ``spike_transformer_lm*`` presets are the setting of Takase et al., "Spike No More:
Stabilizing the Pre-training of Large Language Models" (2023): Pre-LN, learned positions,
GELU, tied input/output embeddings, the "small" init scheme and scaled embeddings (their
fix); ``--embed-treatment vanilla`` is their spiking baseline, ``layernorm`` their other
fix. The paper trains with Megatron-LM; the presets take its model shapes:

========================  ======  =====  =====  ======  ==========================================
preset                    layers  d      heads  ffn     source of the shape
========================  ======  =====  =====  ======  ==========================================
spike_transformer_lm_350m 24      1024   16     4096    GPT-3 "Medium" (Brown et al. 2020, table
                                                        2.1), Megatron-DeepSpeed's gpt-sizes.sh
spike_transformer_lm_1_7b 24      2304   24     9216    Megatron-LM's "1.7B" GPT example script
========================  ======  =====  =====  ======  ==========================================

(24 x 12 d^2 plus a 50k-token embedding gives 0.35B and 1.65B parameters.) The small
presets are for CPU tests and the PTB recipe.
"""

import dataclasses
from argparse import Namespace
from typing import Optional

from omegaconf import DictConfig, OmegaConf

from fairseq.models import register_model, register_model_architecture
from fairseq.models.transformer import TransformerConfig
from fairseq.models.transformer_lm import (
    DEFAULT_MAX_TARGET_POSITIONS,
    TransformerLanguageModel,
    TransformerLanguageModelConfig,
)

from fairseq_plugins.errors import ConfigError
from fairseq_plugins.models.composable_transformer import (
    ComposableTransformerDecoder,
    build_token_embedding,
    initialize_parameters,
)
from fairseq_plugins.models.transformer_options import (
    ComposableTransformerOptions,
    fairseq_build_args,
    option_defaults,
    validate_options,
)
from fairseq_plugins.options import copied_fields, dataclass_defaults, register_preset, set_defaults

MODEL_NAME = "composable_transformer_lm"

# None: equal to --decoder-embed-dim (fairseq's default of 512 would add projections).
DIM_OVERRIDES = [("decoder_input_dim", Optional[int], None), ("decoder_output_dim", Optional[int], None)]

# fairseq's LM config, the family's options that a decoder has (no encoder_*), and the dims above.
ComposableTransformerLMConfig = dataclasses.make_dataclass(
    "ComposableTransformerLMConfig",
    copied_fields(ComposableTransformerOptions, keep=lambda name: not name.startswith("encoder_"))
    + [
        (name, type_, dataclasses.field(default=default,
                                        metadata=TransformerLanguageModelConfig.__dataclass_fields__[name].metadata))
        for name, type_, default in DIM_OVERRIDES
    ],
    bases=(TransformerLanguageModelConfig,),
)

# fairseq LM features that build their own token embeddings or outputs.
UNSUPPORTED_FLAGS = ("character_embeddings", "adaptive_input", "adaptive_softmax_cutoff")


def as_namespace(cfg):
    """A mutable flat copy holding every option of the config class: fairseq's config classes read
    extra keys from a Namespace only, and fairseq's Namespace API (``parse_args_and_arch`` then
    ``task.build_model(args)`` with a preset's name) fills none of the dataclass defaults."""
    if isinstance(cfg, DictConfig):
        return Namespace(**OmegaConf.to_container(cfg, resolve=True))
    args = Namespace(**vars(cfg))
    dataclass_defaults(args, ComposableTransformerLMConfig)
    return args


@register_model(MODEL_NAME, dataclass=ComposableTransformerLMConfig)
class ComposableTransformerLanguageModel(TransformerLanguageModel):
    @classmethod
    def build_model(cls, cfg, task):
        args = as_namespace(cfg)
        option_defaults(args, stacks=("decoder",))  # checkpoints of older versions lack newer options
        validate_options(args, stacks=("decoder",))
        for flag in UNSUPPORTED_FLAGS:
            if getattr(args, flag, None):
                raise ConfigError(f"--{flag.replace('_', '-')} is not supported by --arch {MODEL_NAME}")
        for name in ("decoder_input_dim", "decoder_output_dim"):
            dim = getattr(args, name, None)
            if dim not in (None, args.decoder_embed_dim):
                raise ConfigError(f"--{name.replace('_', '-')} must equal --decoder-embed-dim for --arch {MODEL_NAME}")
            setattr(args, name, args.decoder_embed_dim)
        if args.decoder_layers_to_keep:
            args.decoder_layers = len(args.decoder_layers_to_keep.split(","))
        if getattr(args, "max_target_positions", None) is None:
            args.max_target_positions = getattr(args, "tokens_per_sample", DEFAULT_MAX_TARGET_POSITIONS)
        args = fairseq_build_args(args, stacks=("decoder",))
        embed_tokens = cls.build_embedding(args, task.source_dictionary, args.decoder_embed_dim)
        decoder = ComposableTransformerDecoder(
            TransformerConfig.from_namespace(args), task.target_dictionary, embed_tokens, no_encoder_attn=True
        )
        initialize_parameters((decoder,), args)
        return cls(decoder)

    @classmethod
    def build_embedding(cls, args, dictionary, embed_dim, path=None):
        build_standard = super().build_embedding
        return build_token_embedding(args, dictionary, embed_dim, lambda: build_standard(args, dictionary, embed_dim, path))


@register_model_architecture(MODEL_NAME, "spike_transformer_lm")
def spike_transformer_lm(args):
    """The paper's setting on fairseq's transformer_lm dims (6 layers, d 512, 8 heads, ffn 2048)."""
    if getattr(args, "no_scale_embedding", False):
        set_defaults(args, embed_treatment="vanilla")
    set_defaults(args, decoder_residual="pre_ln", positions="learned", init_scheme="small", embed_treatment="scaled",
                 activation_fn="gelu", share_decoder_input_output_embed=True)


def register_lm_preset(name, summary, layers, dim, heads, dropout):
    register_preset(MODEL_NAME, name, summary, spike_transformer_lm, decoder_layers=layers, decoder_embed_dim=dim,
                    decoder_attention_heads=heads, decoder_ffn_embed_dim=4 * dim, dropout=dropout)


register_lm_preset("spike_transformer_lm_350m", "Spike No More's 350M shape", 24, 1024, 16, dropout=0.1)
register_lm_preset("spike_transformer_lm_1_7b", "Spike No More's 1.7B shape", 24, 2304, 24, dropout=0.1)
register_lm_preset("spike_transformer_lm_small", "small LM for a GPU or a patient CPU (PTB)", 6, 256, 4, dropout=0.3)
register_lm_preset("spike_transformer_lm_tiny", "tiny LM for CPU tests", 2, 128, 4, dropout=0.1)
