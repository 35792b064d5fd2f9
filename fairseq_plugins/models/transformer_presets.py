"""Named architectures of the composable transformer: fairseq's stock dims plus defaults for our options.

A preset only sets defaults; anything given on the command line wins.
"""

from fairseq.models import register_model_architecture
from fairseq.models.transformer import (
    base_architecture,
    transformer_iwslt_de_en,
    transformer_wmt_en_de,
    transformer_wmt_en_de_big,
)

from fairseq_plugins.models.composable_transformer import MODEL_NAME
from fairseq_plugins.models.transformer_options import option_defaults
from fairseq_plugins.options import set_defaults


def register_preset(name, stock_architecture, summary, **defaults):
    """Register ``name``: fairseq's ``stock_architecture`` dims with ``defaults`` for our options."""

    def preset(args):
        set_defaults(args, **defaults)
        stock_architecture(args)
        option_defaults(args)

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

# The baseline SHAPE is compared with: Shaw et al.'s relative positions, k = 16 as in their experiments.
RELATIVE = dict(positions="relative", relative_max_distance=16)
register_preset("relative_transformer", base_architecture, "relative positions (Shaw et al.), k=16", **RELATIVE)
register_preset("relative_transformer_wmt_en_de", transformer_wmt_en_de, "relative positions (Shaw et al.), k=16",
                **RELATIVE)
