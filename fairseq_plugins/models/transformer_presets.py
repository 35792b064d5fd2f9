"""Named architectures of the composable transformer: fairseq's stock dims plus defaults for our options.

A preset only sets defaults; anything given on the command line wins.
"""

from fairseq.models.transformer import (
    base_architecture,
    transformer_iwslt_de_en,
    transformer_wmt_en_de,
    transformer_wmt_en_de_big,
)

from fairseq_plugins.models.composable_transformer import MODEL_NAME
from fairseq_plugins.models.transformer_options import option_defaults
from fairseq_plugins.options import register_preset

# Each preset: our options' defaults, fairseq's stock dims, then the family's remaining defaults.


B2T = dict(encoder_residual="b2t", decoder_residual="b2t")
register_preset(MODEL_NAME, "b2t_transformer", "B2T in both stacks", base_architecture, option_defaults, **B2T)
register_preset(MODEL_NAME, "b2t_transformer_iwslt_de_en", "B2T in both stacks",
                transformer_iwslt_de_en, option_defaults, **B2T)
register_preset(MODEL_NAME, "b2t_transformer_wmt_en_de", "B2T in both stacks",
                transformer_wmt_en_de, option_defaults, **B2T)
register_preset(MODEL_NAME, "b2t_transformer_wmt_en_de_big", "B2T in both stacks",
                transformer_wmt_en_de_big, option_defaults, **B2T)

SHAPE = dict(positions="shape", shape_max_shift=40)
register_preset(MODEL_NAME, "shape_transformer", "SHAPE positions, K=40", base_architecture, option_defaults, **SHAPE)
register_preset(MODEL_NAME, "shape_transformer_wmt_en_de", "SHAPE positions, K=40",
                transformer_wmt_en_de, option_defaults, **SHAPE)

# The ALONE paper's WMT En-De setting: binary filters, FFN inner dimension 8192.
register_preset(MODEL_NAME, "alone_transformer", "ALONE embeddings",
                base_architecture, option_defaults, embeddings="alone")
register_preset(MODEL_NAME, "alone_transformer_wmt_en_de", "ALONE embeddings (binary, D_inter 8192)",
                transformer_wmt_en_de, option_defaults,
                embeddings="alone", alone_filter="binary", alone_inter_dim=8192)

# The baseline SHAPE is compared with: Shaw et al.'s relative positions, k = 16 as in their experiments.
RELATIVE = dict(positions="relative", relative_max_distance=16)
register_preset(MODEL_NAME, "relative_transformer", "relative positions (Shaw et al.), k=16",
                base_architecture, option_defaults, **RELATIVE)
register_preset(MODEL_NAME, "relative_transformer_wmt_en_de", "relative positions (Shaw et al.), k=16",
                transformer_wmt_en_de, option_defaults,
                **RELATIVE)
