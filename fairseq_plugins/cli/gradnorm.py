"""``fairseq-plugins-gradnorm``: per-layer gradient norms of an encoder-decoder at initialisation.

What is measured. The model is built from ordinary fairseq flags (any architecture of fairseq or
of this package, task ``translation``) over a dictionary of ``--vocab-size`` dummy symbols shared
by source and target (so ``--share-all-embeddings`` works). One batch of random tokens
(``--batch-size`` sentences of ``--src-len`` / ``--tgt-len`` tokens, each ending in ``</s>``, no
padding) runs through it in train mode with teacher forcing. The loss ``L`` is the token-level
cross entropy of the decoder output against the random targets, averaged over all target tokens.
For every encoder and decoder layer the command reports ``||dL/dx||``: the L2 norm of the gradient
of ``L`` with respect to that layer's input ``x`` (the whole ``time x batch x channels`` tensor),
bottom layer first, and each stack's bottom/top ratio.

This is the probe behind the B2T paper's first claim (Takase et al. 2023): at init an 18-layer
Post-LN decoder's bottom/top ratio is far below 1 (vanishing gradients); Pre-LN's and B2T's are
not::

    fairseq-plugins-gradnorm --arch b2t_transformer --dropout 0 \\
        --encoder-layers 18 --decoder-layers 18 --encoder-embed-dim 128 --decoder-embed-dim 128 \\
        --encoder-ffn-embed-dim 512 --decoder-ffn-embed-dim 512 \\
        --encoder-attention-heads 4 --decoder-attention-heads 4

With ``--widths D [D ...]`` the command runs Spike No More's width analysis instead
(``cli/width_analysis.py``): for each ``--embed-treatments`` and each width, the std of the
residual stream after the embeddings and the per-layer bound terms at init, for Pre-LN models
(a language model with ``--task language_modeling`` too)::

    fairseq-plugins-gradnorm --task language_modeling --arch spike_transformer_lm --decoder-layers 2 \
        --widths 128 256 512 1024 --plot widths.png

Dropout follows the architecture's flags: pass ``--dropout 0`` for a deterministic probe.
``--seed`` fixes the initialisation; the batch depends on ``--seed`` alone, so architectures
probed with one seed see the same tokens. Of fairseq's other flags only the model's and
``--cpu`` matter. ``--json`` prints ``{"encoder": [...], "decoder": [...]}`` and nothing else to
stdout; ``--plot FILE.png`` also draws the norms per layer.
"""

import sys

import torch
import torch.nn.functional as F

from fairseq_plugins.cli.common import add_json_output, setup_logging, write_results
from fairseq_plugins.cli.dataless import build_model, model_flags_parser, parse_model_flags
from fairseq_plugins.cli import width_analysis
from fairseq_plugins.cli.plotting import check_plot_argument, save_png
from fairseq_plugins.errors import ConfigError
from fairseq_plugins.modules.spike_init import EMBED_TREATMENTS
from fairseq_plugins.options import bounded, outside

STACKS = ("encoder", "decoder")
WIDTH_TREATMENTS = ("vanilla", "scaled", "layernorm")


def parse_args(argv=None):
    parser = model_flags_parser("fairseq-plugins-gradnorm", __doc__.split("\n\n")[0])
    parser.set_defaults(batch_size=32)
    probe = parser.add_argument_group("gradient-norm probe")
    probe.add_argument("--vocab-size", type=bounded(int, ">= 5"), default=1000,
                       help="dictionary size: fairseq's 4 special symbols and at least one word")
    probe.add_argument("--src-len", type=bounded(int, ">= 1"), default=32,
                       help="source tokens per sentence, </s> included")
    probe.add_argument("--tgt-len", type=bounded(int, ">= 1"), default=32,
                       help="target tokens per sentence, </s> included")
    add_json_output(probe, '{"encoder": [...], "decoder": [...]} (with --widths: the width analysis)')
    probe.add_argument("--plot", metavar="FILE.png", help="also save a plot of the norms per layer")
    widths = parser.add_argument_group("width analysis (Spike No More)")
    widths.add_argument("--widths", type=bounded(int, ">= 1"), nargs="+", metavar="D",
                        help="run the width analysis for these model dimensions instead of the gradient probe")
    widths.add_argument("--embed-treatments", nargs="+", default=list(WIDTH_TREATMENTS), metavar="T",
                        help=f"treatments compared by --widths, from {', '.join(EMBED_TREATMENTS)}")
    args = parse_model_flags(parser, sys.argv[1:] if argv is None else argv)
    bad = [t for t in args.embed_treatments if t not in EMBED_TREATMENTS]
    if bad:
        parser.error(f"--embed-treatments must be among {', '.join(EMBED_TREATMENTS)} (got {bad[0]!r})")
    problem = outside(args.batch_size, ">= 1")  # fairseq's own flag, whose type is fairseq's
    if problem:
        parser.error(f"argument --batch-size: {problem}")
    check_plot_argument(parser, args.plot)
    return args


def random_batch(dictionary, batch_size, src_len, tgt_len, seed):
    """Random ordinary symbols, each sentence ending in ``</s>``; all tensors ``(batch, time)``."""
    generator = torch.Generator().manual_seed(seed)

    def sentences(length):
        tokens = torch.randint(dictionary.nspecial, len(dictionary), (batch_size, length), generator=generator)
        tokens[:, -1] = dictionary.eos()
        return tokens

    src_tokens, target = sentences(src_len), sentences(tgt_len)
    # Teacher forcing as fairseq's translation data: the decoder reads </s> then the target shifted right.
    prev_output_tokens = torch.cat([target[:, -1:], target[:, :-1]], dim=1)
    return src_tokens, torch.full((batch_size,), src_len), prev_output_tokens, target


def layer_input_grad_norms(model, src_tokens, src_lengths, prev_output_tokens, target):
    """``{"encoder": [...], "decoder": [...]}``: ``||dL/dx||`` for the input ``x`` of every layer."""
    inputs = {stack: [] for stack in STACKS}
    hooks = [
        layer.register_forward_pre_hook(lambda module, args, stack=stack: inputs[stack].append(args[0]))
        for stack in STACKS
        for layer in getattr(model, stack).layers
    ]
    logits, _ = model(src_tokens, src_lengths, prev_output_tokens)
    for hook in hooks:
        hook.remove()
    for stack in STACKS:
        ran, depth = len(inputs[stack]), len(getattr(model, stack).layers)
        if ran != depth:
            raise ConfigError(f"--{stack}-layerdrop: only {ran} of {depth} {stack} layers ran; set it to 0")

    loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), target.view(-1))  # mean over tokens
    grads = torch.autograd.grad(loss, inputs["encoder"] + inputs["decoder"])
    norms = [grad.float().norm().item() for grad in grads]
    depth = len(inputs["encoder"])
    return {"encoder": norms[:depth], "decoder": norms[depth:]}


def format_table(norms):
    rows = [
        "gradient norm of the loss w.r.t. each layer's input (layer 1 = bottom)",
        f"{'layer':>10} {'encoder':>11} {'decoder':>11}",
    ]
    for i in range(max(len(values) for values in norms.values())):
        cells = [f"{values[i]:11.4e}" if i < len(values) else " " * 11 for values in norms.values()]
        rows.append(f"{i + 1:>10} " + " ".join(cells))
    rows.append(f"{'bottom/top':>10} " + " ".join(f"{values[0] / values[-1]:11.4g}" for values in norms.values()))
    return "\n".join(rows)


def save_plot(path, norms, title):
    """Norm per layer, log scale, one line per stack."""
    from matplotlib import ticker

    def draw(axes):
        for stack, values in norms.items():
            axes.plot(range(1, len(values) + 1), values, marker="o", label=stack)
        axes.set(yscale="log", xlabel="layer (1 = bottom)", ylabel="||dL/d layer input||", title=title)
        axes.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
        axes.legend()

    save_png(path, draw)


def main(argv=None):
    # fairseq's speech tasks configure the root logger at INFO when the task registry is imported.
    setup_logging(quiet=True)
    args = parse_args(argv)
    if args.widths is not None:
        results = width_analysis.run(args, args.widths, args.embed_treatments, args.batch_size, args.tgt_len,
                                     args.vocab_size)
        write_results(results, args, width_analysis.format_table)
        if args.plot is not None:
            width_analysis.save_plot(args.plot, results, f"{args.arch}, seed {args.seed}")
        return
    torch.manual_seed(args.seed)
    model = build_model(args, args.vocab_size)
    dictionary = model.decoder.dictionary
    for stack in STACKS:
        if not hasattr(getattr(model, stack, None), "layers"):
            raise ConfigError(f"--arch {args.arch}: the model has no {stack}.layers to probe")
    max_src, max_tgt = model.max_positions()
    for flag, length, limit in (("--src-len", args.src_len, max_src), ("--tgt-len", args.tgt_len, max_tgt)):
        if length > limit:
            raise ConfigError(f"{flag} {length} exceeds the model's maximum of {limit} positions")

    device = torch.device("cuda" if torch.cuda.is_available() and not args.cpu else "cpu")
    model.to(device).train()
    batch = random_batch(dictionary, args.batch_size, args.src_len, args.tgt_len, args.seed)
    norms = layer_input_grad_norms(model, *(tensor.to(device) for tensor in batch))

    write_results(norms, args, format_table)
    if args.plot is not None:
        save_plot(args.plot, norms, f"{args.arch}, seed {args.seed}")


if __name__ == "__main__":
    main()
