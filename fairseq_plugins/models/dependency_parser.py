"""``dependency_parser``: graph-based dependency parser with weight- or instance-based arc and label heads.

One network for both families (Ouchi et al., TACL 2021, against its weight-based baseline): a
per-token encoder (``--encoder-type bilstm`` or ``transformer``, ``models/token_encoders.py``),
then, as biaffine parsers do, separate projections for arcs and for labels (``--mlp-dim``), each
with its own edge vectors ``e(d, h) = W (dep_d * head_h)`` (``--edge-dim``;
``modules/edge_scoring.py``):

- ``--arc-head instance``: mean similarity of the arc edge ``e_arc(d, h)`` to the instance
  set's gold arc edges; ``weight``: biaffine ``dep_d^T U head_h + u . head_h``.
- ``--label-head instance``: the softmax mass of each label's gold label edges among all of them
  (``--instance-labels mass``, the default: the authors' instance-based NER rule, which carries the
  labels' frequencies) or the mean similarity of the label edge ``e_label(d, h)`` to each label's
  gold label edges (``mean``, the paper's equation); ``weight``: a linear layer on ``e_label(d, h)``.
  mass is the default because its LAS was higher in every comparison on the Turkish small mode
  (8 and 30 epochs, both similarities, with and without characters; docs/instance_parsing.md).
- ``--similarity dot`` (default) or ``cosine`` (scaled by ``--cosine-scale``, learned unless
  ``--fixed-cosine-scale``; arcs and labels have a scale each). The paper evaluates both; dot is
  the default because its UAS was higher at every budget there (cosine with the mass rule trades
  2.4 UAS for 8.6 LAS after 30 epochs, and trails in both at 8).
- ``--decoder mst`` (default; Chu-Liu-Edmonds, exactly one root), ``eisner`` (projective trees)
  or ``greedy`` (the authors' per-word argmax; may not be a tree). With a ``root`` label (UD), the
  word attached to 0 is labelled ``root`` and no other word is (``choose_labels``).

Why two edge spaces: with one shared space, the arc objective pulls every gold edge towards the
single mean of the training edges while the labels need them apart (Turkish web treebank, valid
split, seed 1, 15 epochs, cosine: UAS 62.7 / LAS 21.1 with one space, 64.6 / 30.4 with two; the
weight-based model 71.1 / 44.3).

The instance sets live in ``self.arc_memory`` and ``self.label_memory``
(``modules/instance_memory.py``), outside the state dict: the task fills them with the gold edges
of K sampled training sentences before each training step and of the whole training set before
inference (``models/instance_based.py``, ``tasks/instance_sets.py``).

``forward(src_tokens) -> (arc scores (B, T, T) indexed [b, dependent, head], extra)``, padding
heads and self-loops at -inf; ``label_scores(extra, heads) -> (B, T, L)``; ``parse`` decodes.
Presets: ``dependency_parser_bilstm`` (2 x 100 BiLSTM, as the authors' span encoder) and
``dependency_parser_transformer``.
"""

from dataclasses import dataclass, field

import torch
from torch import nn

from fairseq.models import BaseFairseqModel, register_model, register_model_architecture

from fairseq_plugins.errors import ConfigError
from fairseq_plugins.models.instance_based import InstanceBasedModel
from fairseq_plugins.models.token_encoders import TokenEncoderConfig, build_token_encoder
from fairseq_plugins.modules.edge_scoring import BiaffineArcScorer, DepHeadProjections, EdgeVectors, InstanceEdgeScorer
from fairseq_plugins.modules.instance_memory import SIMILARITIES, InstanceMemory
from fairseq_plugins.modules.tree_decoding import DECODERS, decode
from fairseq_plugins.options import bounded_field, check_options, choice_field, dataclass_defaults, set_defaults

HEADS = ("instance", "weight")
LABEL_RULES = ("mean", "mass")
ROOT_LABEL = "root"


@dataclass
class DependencyParserConfig(TokenEncoderConfig):
    arc_head: str = choice_field("instance", HEADS, "arc scorer: similarity to training edges, or biaffine weights")
    label_head: str = choice_field("instance", HEADS, "label scorer: similarity to each label's training edges, or a linear layer")
    similarity: str = choice_field("dot", SIMILARITIES, "instance heads: similarity of edge vectors (dot, the default: "
                                   "the higher UAS in our runs, docs/instance_parsing.md)")
    instance_labels: str = choice_field(
        "mass", LABEL_RULES, "instance label head: mass (the default: the higher LAS in our runs): a label's "
        "probability is the softmax mass of its training edges among all (the authors' instance-based NER rule, "
        "which carries the label frequencies); mean: its score is the mean similarity to its training edges (the "
        "paper's equation)")
    cosine_scale: float = bounded_field(10.0, "> 0", "cosine similarity: (initial) scale s of s * cos")
    fixed_cosine_scale: bool = field(default=False, metadata={"help": "cosine similarity: keep --cosine-scale fixed"})
    decoder: str = choice_field("mst", DECODERS, "mst: best tree with one root (Chu-Liu-Edmonds); eisner: best projective tree; greedy: best head per word")
    mlp_dim: int = bounded_field(128, ">= 1", "size of the dep/head projections")
    edge_dim: int = bounded_field(128, ">= 1", "size of the edge vectors e(d, h)")
    mlp_dropout: float = field(default=0.3, metadata={"help": "dropout after the dep/head projections"})


@register_model("dependency_parser", dataclass=DependencyParserConfig)
class DependencyParser(InstanceBasedModel, BaseFairseqModel):
    def __init__(self, cfg, dictionary, num_labels, root_label=None):
        super().__init__()
        self.root_label = root_label  # index of the label ``root`` (UD: exactly the word attached to 0 has it)
        check_options(cfg, DependencyParserConfig)
        self.cfg = cfg
        self.encoder = build_token_encoder(cfg, dictionary)
        width = self.encoder.output_dim

        def instance_scorer():
            return InstanceEdgeScorer(cfg.similarity, cfg.cosine_scale, not cfg.fixed_cosine_scale)

        if cfg.arc_head == "weight":
            self.arc_vectors = DepHeadProjections(width, cfg.mlp_dim, cfg.mlp_dropout)
            self.arc_scorer = BiaffineArcScorer(cfg.mlp_dim)
        else:
            self.arc_vectors = EdgeVectors(width, cfg.mlp_dim, cfg.edge_dim, cfg.mlp_dropout)
            self.arc_scorer = instance_scorer()
        self.label_vectors = EdgeVectors(width, cfg.mlp_dim, cfg.edge_dim, cfg.mlp_dropout)
        self.label_scorer = nn.Linear(cfg.edge_dim, num_labels) if cfg.label_head == "weight" else instance_scorer()
        self.arc_memory = InstanceMemory(num_labels, cfg.similarity)
        self.label_memory = InstanceMemory(num_labels, cfg.similarity)

    @classmethod
    def build_model(cls, cfg, task):
        if not hasattr(task, "labels"):
            raise ConfigError("--arch dependency_parser_*: needs --task dependency_parsing")
        dataclass_defaults(cfg, DependencyParserConfig)
        return cls(cfg, task.source_dictionary, len(task.labels), task.label_index.get(ROOT_LABEL))

    @property
    def uses_instances(self):
        return "instance" in (self.cfg.arc_head, self.cfg.label_head)

    def instance_memories(self):
        heads = {"arc": (self.cfg.arc_head, self.arc_memory), "label": (self.cfg.label_head, self.label_memory)}
        return {name: memory for name, (head, memory) in heads.items() if head == "instance"}

    def encode(self, src_tokens):
        states, padding = self.encoder(src_tokens)
        dep, head = self.arc_vectors(states)
        return {"states": states, "padding": padding, "arc_dep": dep, "arc_head": head}

    def forward(self, src_tokens, src_lengths=None, **unused):
        extra = self.encode(src_tokens)
        dep, head = extra["arc_dep"], extra["arc_head"]
        if self.cfg.arc_head == "weight":
            scores = self.arc_scorer(dep, head)
        else:
            scores = self.arc_scorer.arc_scores(self.arc_vectors.all_edges(dep, head), self.arc_memory)
        self_loops = torch.eye(src_tokens.size(1), dtype=torch.bool, device=scores.device)
        return scores.masked_fill(extra["padding"].unsqueeze(1) | self_loops, float("-inf")), extra

    def arc_edges(self, extra, heads):
        """Arc edge vectors ``e_arc(d, heads[d])`` (B, T, e) (instance arc head only)."""
        return self.arc_vectors.edges_to(extra["arc_dep"], extra["arc_head"], heads.clamp(min=0))

    def label_edges(self, extra, heads):
        """Label edge vectors ``e_label(d, heads[d])`` (B, T, e)."""
        dep, head = self.label_vectors(extra["states"])
        return self.label_vectors.edges_to(dep, head, heads.clamp(min=0))

    def label_scores(self, extra, heads):
        """Label scores (B, T, L) of the edges from ``heads`` (B, T) (any index at padding)."""
        edges = self.label_edges(extra, heads)
        if self.cfg.label_head == "weight":
            return self.label_scorer(edges)
        if self.cfg.instance_labels == "mass":
            return self.label_scorer.label_masses(edges, self.label_memory)
        return self.label_scorer.label_scores(edges, self.label_memory)

    def encode_instances(self, batch):
        """The gold edges of a batch of training sentences: ``{"arc"/"label": (edge vectors (N, e),
        labels (N,), ids (N, 2) = (sentence, dependent))}`` for the instance heads."""
        extra = self.encode(batch["net_input"]["src_tokens"])
        heads, labels = batch["target"], batch["labels"]
        known = (heads >= 0) & (labels >= 0)
        rows, dependents = known.nonzero(as_tuple=True)
        ids = torch.stack([batch["id"].to(rows.device)[rows], dependents], 1)
        edge_vectors = {"arc": self.arc_edges, "label": self.label_edges}
        return {name: (edge_vectors[name](extra, heads)[known], labels[known], ids) for name in self.instance_memories()}

    def parse(self, arc_scores, extra, lengths):
        """Decoded heads and labels (B, T), -1 at the root and padding; ``lengths`` count the root."""
        heads = self.decode_heads(arc_scores, lengths)
        return heads, self.choose_labels(self.label_scores(extra, heads), heads)

    def decode_heads(self, arc_scores, lengths):
        """Heads (B, T) decoded by ``--decoder`` from arc scores (B, T, T), -1 at the root and padding."""
        heads = torch.full(arc_scores.shape[:2], -1, dtype=torch.long)
        scores = arc_scores.detach().double().cpu().numpy()
        for row, length in enumerate(lengths.tolist()):
            heads[row, :length] = torch.from_numpy(decode(scores[row, :length, :length], self.cfg.decoder))
        return heads.to(arc_scores.device)

    def choose_labels(self, label_scores, heads):
        """The best label of each edge (B, T), -1 at the root and padding. With a ``root`` label (UD), a
        word attached to 0 gets ``root`` and any other word its best other label, as the UD validator
        requires (the label head alone may give ``root`` to a word whose head is not 0)."""
        if self.root_label is not None:
            is_root_label = torch.zeros(label_scores.size(-1), dtype=torch.bool, device=label_scores.device)
            is_root_label[self.root_label] = True
            attached_to_0 = (heads == 0).unsqueeze(-1)
            label_scores = label_scores.masked_fill(is_root_label & ~attached_to_0, float("-inf"))
            label_scores = label_scores.masked_fill(~is_root_label & attached_to_0, float("-inf"))
        return label_scores.argmax(-1).masked_fill(heads < 0, -1)

    def max_positions(self):
        return self.cfg.max_positions


@register_model_architecture("dependency_parser", "dependency_parser_bilstm")
def dependency_parser_bilstm(args):
    set_defaults(args, encoder_type="bilstm", encoder_embed_dim=100, encoder_hidden_dim=100, encoder_layers=2)


@register_model_architecture("dependency_parser", "dependency_parser_transformer")
def dependency_parser_transformer(args):
    set_defaults(args, encoder_type="transformer", encoder_embed_dim=128, encoder_ffn_embed_dim=256,
                 encoder_layers=2, encoder_attention_heads=4)
