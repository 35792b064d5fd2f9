"""``fairseq-plugins-shift-invariance``: how much a trained encoder's outputs move when positions shift.

For sentences of a split, the encoder runs with every position shifted by ``k``
(positions ``t + k``) for ``k = 0..K``; the command reports the mean cosine
similarity of each token's encoder output at offset ``k`` with its output at
offset 0. SHAPE, trained with random shifts, should stay near 1; absolute
sinusoidal positions (APE) should drop (Kiyono et al., 2021, section 5)::

    fairseq-plugins-shift-invariance data-bin \\
        --path checkpoints/checkpoint_best.pt --max-offset 40 --json --plot shift.png

Works for any encoder-decoder checkpoint with sinusoidal or SHAPE positions: the
probe installs a sinusoidal table whose offset it controls (identical to
fairseq's, and to SHAPE's) in place of the encoder's positions.
"""

import os

import torch
import torch.nn.functional as F

import fairseq_plugins  # noqa: F401  (fills fairseq's registries)
from fairseq_plugins.cli.checkpoints import load_checkpoint, load_split
from fairseq_plugins.cli.common import (
    add_json_output, add_user_dir, command_parser, import_user_dir, setup_logging, write_results,
)
from fairseq_plugins.cli.plotting import check_plot_argument, save_png
from fairseq_plugins.errors import ConfigError
from fairseq_plugins.modules.shape import ShiftedSinusoidalPositions
from fairseq_plugins.options import bounded


def parse_args(argv=None):
    parser = command_parser("fairseq-plugins-shift-invariance", __doc__)
    parser.add_argument("data", help="binarized data directory (fairseq-preprocess output)")
    parser.add_argument("--path", required=True, help="checkpoint file")
    parser.add_argument("--gen-subset", default="test", help="split whose sentences are encoded")
    parser.add_argument("--max-sentences", type=bounded(int, ">= 1"), default=200, help="sentences used from the split")
    parser.add_argument("--max-offset", type=bounded(int, ">= 0"), default=40, help="K: offsets 0..K are probed")
    add_json_output(parser, '{"offsets": [...], "similarity": [...]}')
    add_user_dir(parser)
    parser.add_argument("--plot", metavar="FILE.png", help="save similarity versus offset")
    args = parser.parse_args(argv)
    check_plot_argument(parser, args.plot)
    return args


def load(args):
    model, cfg, task = load_checkpoint(args.path, data=args.data)
    if getattr(model.encoder, "embed_positions", None) is None:
        raise ConfigError(f"--path {args.path}: the model's encoder has no positions to shift")
    if hasattr(model.encoder.embed_positions, "weight"):
        raise ConfigError(f"--path {args.path}: learned positions have no rows beyond training; probe sinusoidal or SHAPE")
    dataset = load_split(task, cfg, args.gen_subset, "--gen-subset")
    batch = dataset.collater([dataset[i] for i in range(min(args.max_sentences, len(dataset)))])
    return model, batch["net_input"]


@torch.no_grad()
def shift_similarities(model, net_input, max_offset):
    """Mean cosine similarity of non-padding encoder outputs at offset k versus offset 0, k = 0..max_offset."""
    encoder = model.encoder
    probe = ShiftedSinusoidalPositions(encoder.embed_tokens.embedding_dim, encoder.padding_idx,
                                       encoder.max_source_positions, max_offset).eval()
    original, encoder.embed_positions = encoder.embed_positions, probe
    try:
        outputs = []
        for offset in range(max_offset + 1):
            probe.fixed_offset = offset
            out = encoder(net_input["src_tokens"], src_lengths=net_input["src_lengths"])
            outputs.append(out["encoder_out"][0])  # (time, batch, dim)
    finally:
        encoder.embed_positions = original
    keep = ~net_input["src_tokens"].eq(encoder.padding_idx).t()  # (time, batch)
    return [F.cosine_similarity(output, outputs[0], dim=-1)[keep].mean().item() for output in outputs]


def save_plot(path, similarities, title):
    def draw(axes):
        axes.plot(range(len(similarities)), similarities, marker=".")
        axes.set(xlabel="position offset k", ylabel="cosine similarity to k = 0", title=title, ylim=(None, 1.01))

    save_png(path, draw)


def table(results):
    return "\n".join(["offset  cosine similarity to offset 0 (mean over tokens)"] +
                     [f"{offset:>6}  {value:.4f}" for offset, value in zip(results["offsets"], results["similarity"])])


def main(argv=None):
    args = parse_args(argv)
    setup_logging(quiet=True)
    import_user_dir(args.user_dir)
    model, net_input = load(args)
    similarities = shift_similarities(model, net_input, args.max_offset)
    write_results({"offsets": list(range(args.max_offset + 1)), "similarity": similarities}, args, table)
    if args.plot:
        checkpoint_dir, checkpoint = os.path.split(os.path.abspath(args.path))
        save_plot(args.plot, similarities, f"{os.path.basename(checkpoint_dir)}/{checkpoint}")


if __name__ == "__main__":
    main()
