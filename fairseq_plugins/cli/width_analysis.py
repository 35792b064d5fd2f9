"""Spike No More's width analysis at init, for ``fairseq-plugins-gradnorm --widths``.

For each embedding treatment and each width ``d`` the model of the given flags is built
again with ``d`` as its model dimension (the FFN keeps its ratio to ``d``, the heads their
number), under the same ``--seed``, and one batch of random tokens runs through it in
eval mode (no dropout). Reported per stack:

- ``shortcut_std``: the std of the residual stream entering the first layer (token
  embeddings after the treatment, plus positions): the "shortcut" of the paper;
- ``bound_terms``: for every layer, one ``modules.spike_init.pre_ln_sublayer_bound`` per
  sub-layer (self-attention, cross-attention if any, FFN), each with the std of its own
  input; ``first_bound_term`` is layer 1's self-attention term (its input is the shortcut
  itself), ``mean_bound_term`` the mean over all layers and sub-layers. Deeper sub-layers
  read the shortcut plus what the layers below added, which is not small next to a tiny
  shortcut, so their terms grow more slowly with ``d`` than the first.

The paper's claim (Takase et al. 2023, section on the embedding's std): with vanilla
embeddings of std sqrt(2/(5d)) the shortcut's std falls like d^-1/2 and the bound terms grow
like d^1/2; scaled embeddings (std ~0.63) and an embedding LayerNorm (std ~1) keep both flat.
"""

import copy
import math
from functools import partial

import torch

from fairseq_plugins.cli.dataless import build_model, with_model_defaults
from fairseq_plugins.errors import ConfigError
from fairseq_plugins.modules.spike_init import pre_ln_sublayer_bound

# (LayerNorm in front of the sub-layer, its first and second weight matrices): fairseq's names.
SUBLAYERS = (
    ("self_attn_layer_norm", "self_attn.v_proj", "self_attn.out_proj"),
    ("encoder_attn_layer_norm", "encoder_attn.v_proj", "encoder_attn.out_proj"),
    ("final_layer_norm", "fc1", "fc2"),
)
STACKS = ("encoder", "decoder")


def with_width(args, width, treatment):
    """``args`` with model dimension ``width`` in every stack and embed treatment ``treatment``."""
    args = copy.deepcopy(args)
    args.embed_treatment = treatment
    for stack in STACKS:
        dim = getattr(args, f"{stack}_embed_dim", None)
        if dim is None:
            continue
        heads = getattr(args, f"{stack}_attention_heads")
        if width % heads:
            raise ConfigError(f"--widths {width} is not a multiple of --{stack}-attention-heads {heads}")
        ratio = getattr(args, f"{stack}_ffn_embed_dim") / dim
        setattr(args, f"{stack}_embed_dim", width)
        setattr(args, f"{stack}_ffn_embed_dim", round(ratio * width))
        for extra in ("input_dim", "output_dim"):  # LMs: None means "= the embed dim"
            if getattr(args, f"{stack}_{extra}", None) is not None:
                setattr(args, f"{stack}_{extra}", width)
    return args


def stacks_with_layers(model):
    return {stack: getattr(model, stack) for stack in STACKS if hasattr(getattr(model, stack, None), "layers")}


def record_input_std(stds, module, args):
    """Forward pre-hook: the std of the module's first input, at its first call (returns None:
    a pre-hook's return value would replace the input)."""
    stds.setdefault(id(module), args[0].float().std().item())


def measure(model, inputs):
    """``{"shortcut_std": {stack: s}, "bound_terms": {stack: [[term per sub-layer] per layer]}}``."""
    stacks = stacks_with_layers(model)
    stds = {}  # id(module) -> std of its input
    hooks = []
    for stack in stacks.values():
        for index, layer in enumerate(stack.layers):
            if not getattr(layer, "normalize_before", False):
                raise ConfigError("--widths: the bound is that of Pre-LN layers; use --decoder-residual pre_ln "
                                  "(and --encoder-residual pre_ln for a translation model)")
            watched = [getattr(layer, norm) for norm, _, _ in SUBLAYERS if getattr(layer, norm, None) is not None]
            for module in ([layer] if index == 0 else []) + watched:
                hooks.append(module.register_forward_pre_hook(partial(record_input_std, stds)))
    with torch.no_grad():
        model(*inputs)
    for hook in hooks:
        hook.remove()

    report = {"shortcut_std": {}, "bound_terms": {}}
    for name, stack in stacks.items():
        report["shortcut_std"][name] = stds[id(stack.layers[0])]
        report["bound_terms"][name] = [
            [
                pre_ln_sublayer_bound(
                    layer.get_submodule(first).weight, layer.get_submodule(second).weight,
                    getattr(layer, norm).weight, stds[id(getattr(layer, norm))],
                )
                for norm, first, second in SUBLAYERS
                if getattr(layer, norm, None) is not None
            ]
            for layer in stack.layers
        ]
    report["first_bound_term"] = {name: layers[0][0] for name, layers in report["bound_terms"].items()}
    terms = [t for layers in report["bound_terms"].values() for layer in layers for t in layer]
    report["mean_bound_term"] = sum(terms) / len(terms)
    return report


def random_inputs(args, model, batch_size, length, seed):
    """A batch of random ordinary tokens: ``(src_tokens, src_lengths, prev_output_tokens)`` or ``(tokens,)``."""
    dictionary = model.decoder.dictionary
    generator = torch.Generator().manual_seed(seed)
    tokens = torch.randint(dictionary.nspecial, len(dictionary), (batch_size, length), generator=generator)
    if hasattr(model, "encoder"):
        return tokens, torch.full((batch_size,), length), tokens.flip(1)
    return (tokens,)


def run(args, widths, treatments, batch_size, length, vocab_size):
    """``{treatment: [{"width": d, ...measure()}, ...]}`` over ``widths``."""
    args = with_model_defaults(args)
    results = {}
    for treatment in treatments:
        rows = results[treatment] = []
        for width in widths:
            torch.manual_seed(args.seed)
            model = build_model(with_width(args, width, treatment), vocab_size).eval()
            inputs = random_inputs(args, model, batch_size, length, args.seed)
            rows.append({"width": width, **measure(model, inputs)})
    return results


def format_table(results):
    widths = [row["width"] for row in next(iter(results.values()))]
    header = f"{'treatment':>10} {'quantity':>20} " + " ".join(f"{'d=' + str(w):>9}" for w in widths)
    lines = ["Spike No More width analysis at init: std of the shortcut into layer 1, layer 1's self-attention "
             "bound term, mean bound term over all sub-layers",
             header]
    for treatment, rows in results.items():
        stacks = list(rows[0]["shortcut_std"])
        for stack in stacks:
            values = " ".join(f"{row['shortcut_std'][stack]:9.4f}" for row in rows)
            lines.append(f"{treatment:>10} {stack + ' shortcut std':>20} {values}")
            values = " ".join(f"{row['first_bound_term'][stack]:9.3f}" for row in rows)
            lines.append(f"{treatment:>10} {stack + ' layer-1 term':>20} {values}")
        lines.append(f"{treatment:>10} {'mean bound term':>20} " + " ".join(f"{row['mean_bound_term']:9.3f}" for row in rows))
    lines.append(f"{'':>10} {'sqrt(2/(5d))':>20} " + " ".join(f"{math.sqrt(2 / (5 * w)):9.4f}" for w in widths))
    return "\n".join(lines)


def save_plot(path, results, title):
    from fairseq_plugins.cli.plotting import save_png

    def draw(axes):
        std_axes, bound_axes = axes
        for treatment, rows in results.items():
            widths = [row["width"] for row in rows]
            stack = list(rows[0]["shortcut_std"])[-1]
            line, = std_axes.plot(widths, [row["shortcut_std"][stack] for row in rows], marker="o", label=treatment)
            bound_axes.plot(widths, [row["first_bound_term"][stack] for row in rows], marker="o",
                            color=line.get_color(), label=f"{treatment}, layer 1 attention")
            bound_axes.plot(widths, [row["mean_bound_term"] for row in rows], linestyle=":", marker=".",
                            color=line.get_color(), label=f"{treatment}, mean")
        widths = [row["width"] for row in next(iter(results.values()))]
        std_axes.plot(widths, [math.sqrt(2 / (5 * w)) for w in widths], "k--", label="sqrt(2/(5d))")
        std_axes.set(xscale="log", yscale="log", xlabel="d", ylabel="std of the shortcut into layer 1", title=title)
        bound_axes.set(xscale="log", yscale="log", xlabel="d", ylabel="bound term per sub-layer")
        for axis in axes:
            axis.set_xticks(widths, [str(w) for w in widths])
            axis.legend()

    save_png(path, draw, figsize=(10, 4), panels=2)
