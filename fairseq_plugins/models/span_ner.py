"""``span_ner``: span-based NER with a classifier head or an instance-based head (Ouchi et al., ACL 2020).

A per-token encoder (``--encoder-type bilstm`` or ``transformer``, ``models/token_encoders.py``)
gives states; every span (i, j) of at most ``--max-span-length`` tokens gets the vector
``s = dropout(W [f_j - f_{i-1}; b_i - b_{j+1}])`` (``modules/spans.py``, ``--span-dim`` 100). Heads:

- ``--span-head classifier``: ``P(y | s) = softmax_y(s . e_y)``, one learned vector per label
  (the null label included);
- ``--span-head instance``: ``P(y | s) = sum_{j: y_j = y} softmax_j(sim(s, s_j))`` over instance
  spans ``s_j`` (``modules/instance_memory.py``; ``--similarity dot`` or ``cosine``, the cosine
  multiplied by ``--cosine-scale``). The instances are ALL spans (null ones included) of training
  sentences, in ``self.memory``, which the task fills (``models/instance_based.py``): in training
  with the spans of K sampled sentences, scored as one differentiable (queries x instances)
  matrix; in evaluation with every span of the training split, scored exactly in chunks.

``forward(src_tokens, src_lengths) -> (log_probs (B, T, L, C), extra)``; spans past a sentence's
end get a uniform distribution (every consumer masks them).
"""

import math
from dataclasses import dataclass, field

import torch
from omegaconf import II
from torch import nn

from fairseq.models import BaseFairseqModel, register_model, register_model_architecture

from fairseq_plugins.errors import ConfigError
from fairseq_plugins.models.instance_based import InstanceBasedModel
from fairseq_plugins.models.token_encoders import TokenEncoderConfig, build_token_encoder
from fairseq_plugins.modules.instance_memory import SIMILARITIES, InstanceMemory
from fairseq_plugins.modules.spans import span_mask, span_vectors
from fairseq_plugins.options import bounded_field, check_options, choice_field, dataclass_defaults, set_defaults

SPAN_HEADS = ("classifier", "instance")


@dataclass
class SpanNerModelConfig(TokenEncoderConfig):
    span_head: str = choice_field("instance", SPAN_HEADS, "how a span vector becomes label probabilities")
    similarity: str = choice_field("dot", SIMILARITIES, "instance head: similarity of two span vectors")
    cosine_scale: float = field(default=10.0, metadata={"help": "--similarity cosine: multiplies the cosine before the softmax"})
    span_dim: int = bounded_field(100, ">= 1", "size of the projected span vectors")
    max_positions: int = II("task.max_positions")


@register_model("span_ner", dataclass=SpanNerModelConfig)
class SpanNerModel(InstanceBasedModel, BaseFairseqModel):
    def __init__(self, cfg, dictionary, num_labels, max_span_length):
        super().__init__()
        check_options(cfg, SpanNerModelConfig)
        self.cfg = cfg
        self.max_span_length = max_span_length
        self.num_labels = num_labels
        self.encoder = build_token_encoder(cfg, dictionary)
        self.span_projection = nn.Linear(self.encoder.output_dim, cfg.span_dim)
        self.span_dropout = nn.Dropout(cfg.dropout)
        if cfg.span_head == "classifier":
            self.label_embeddings = nn.Parameter(torch.empty(num_labels, cfg.span_dim).normal_(0, cfg.span_dim**-0.5))
        self.memory = InstanceMemory(num_labels, cfg.similarity)
        self.scale = cfg.cosine_scale if cfg.similarity == "cosine" else 1.0

    @classmethod
    def build_model(cls, cfg, task):
        if not hasattr(task, "labels"):
            raise ConfigError("--arch span_ner needs --task span_ner")
        dataclass_defaults(cfg, SpanNerModelConfig)
        return cls(cfg, task.source_dictionary, len(task.labels), task.cfg.max_span_length)

    @property
    def uses_instances(self):
        return self.cfg.span_head == "instance"

    def instance_memories(self):
        return {"spans": self.memory}

    def spans(self, src_tokens):
        """Span vectors of the grid: (B, T, L, span_dim)."""
        states, _ = self.encoder(src_tokens)
        return self.span_dropout(self.span_projection(span_vectors(states, self.max_span_length)))

    def forward(self, src_tokens, src_lengths=None, **unused):
        if src_lengths is None:
            src_lengths = src_tokens.ne(self.encoder.padding_idx).sum(1)
        vectors = self.spans(src_tokens)
        inside = span_mask(src_lengths, src_tokens.size(1), self.max_span_length)
        queries = vectors[inside]  # (S, span_dim): the spans inside the sentences
        if self.cfg.span_head == "classifier":
            log_probs = (queries @ self.label_embeddings.t()).log_softmax(-1)
        elif not len(self.memory):
            raise ConfigError("the instance head scores against training spans: its task fills model.memory "
                              "(before each training step, and prepare_for_inference before scoring)")
        else:  # training: the spans of K sampled sentences, differentiable; else the whole memory, streamed
            log_probs = self.memory.label_log_probs(queries, scale=self.scale, differentiable=self.training)
        grid = vectors.new_full((*inside.shape, self.num_labels), -math.log(self.num_labels))
        grid[inside] = log_probs.to(grid.dtype)
        return grid, {"span_mask": inside}

    def encode_instances(self, batch):
        """Every span of a collated batch of training sentences: ``{"spans": (vectors (N, span_dim),
        labels (N,), ids (N, 3) = (sentence id, start, end))}``."""
        vectors = self.spans(batch["net_input"]["src_tokens"])
        inside = batch["target"] >= 0
        rows, starts, widths = inside.nonzero(as_tuple=True)
        ids = torch.stack([batch["id"][rows], starts, starts + widths], dim=1)
        return {"spans": (vectors[inside], batch["target"][inside], ids)}

    @torch.no_grad()
    def query_vectors(self, src_tokens, spans):
        """Eval-mode vectors (S, span_dim) of ``spans``, a list of ``(row, start, end, ...)`` in ``src_tokens``."""
        vectors = self.spans(src_tokens)
        rows, starts, ends = (torch.tensor([span[k] for span in spans], device=vectors.device) for k in range(3))
        return vectors[rows, starts, ends - starts]

    def get_normalized_probs(self, net_output, log_probs, sample=None):
        return net_output[0] if log_probs else net_output[0].exp()

    def max_positions(self):
        return self.cfg.max_positions


@register_model_architecture("span_ner", "span_ner_bilstm")
def span_ner_bilstm(args):
    """The paper's encoder: 2-layer BiLSTM, 100 units per direction, 100-d word embeddings and span vectors."""
    set_defaults(args, encoder_type="bilstm", encoder_embed_dim=100, encoder_hidden_dim=100, encoder_layers=2,
                 span_dim=100)


@register_model_architecture("span_ner", "span_ner_transformer")
def span_ner_transformer(args):
    """The family's Pre-LN transformer encoder (2 layers, d 128, 4 heads) under the same span heads."""
    set_defaults(args, encoder_type="transformer", encoder_embed_dim=128, encoder_ffn_embed_dim=256,
                 encoder_layers=2, encoder_attention_heads=4, dropout=0.1, span_dim=100)
