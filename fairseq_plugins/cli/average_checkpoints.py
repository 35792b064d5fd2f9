"""``fairseq-plugins-average``: average the parameters of several fairseq checkpoints.

fairseq's ``scripts/average_checkpoints.py`` is not installed by any fairseq
package; this command takes the same options::

    fairseq-plugins-average --inputs ckpt/ --num-update-checkpoints 10 --output avg.pt
    fairseq-plugins-average --inputs a.pt b.pt c.pt --output avg.pt

The result is the last input checkpoint (its args, task state and optimizer
history) with every model tensor replaced by the mean over the inputs, so
fairseq-generate and fairseq-validate load it like any checkpoint. It is written
to a temporary file and renamed, so a failure never leaves a partial output.
"""

import collections
import os
import re
import sys
import tempfile

import torch

import fairseq_plugins  # noqa: F401  (allows fairseq's checkpoint globals in torch.load)
from fairseq_plugins.cli.common import command_parser
from fairseq_plugins.errors import ConfigError
from fairseq_plugins.options import bounded


def last_checkpoints(directory, count, by_updates, upper_bound=None):
    """The ``count`` newest ``checkpoint{E}.pt`` / ``checkpoint_{E}_{U}.pt`` files in ``directory``."""
    pattern = re.compile(r"checkpoint_\d+_(\d+)\.pt$" if by_updates else r"checkpoint(\d+)\.pt$")
    found = []
    for name in os.listdir(directory):
        match = pattern.fullmatch(name)
        if match and (upper_bound is None or int(match.group(1)) <= upper_bound):
            found.append((int(match.group(1)), os.path.join(directory, name)))
    flag = "--num-update-checkpoints" if by_updates else "--num-epoch-checkpoints"
    if len(found) < count:
        raise ConfigError(f"{flag} {count}: only {len(found)} matching checkpoints in {directory}")
    return [path for _, path in sorted(found, reverse=True)[:count]]


def load(path):
    if not os.path.isfile(path):
        raise ConfigError(f"--inputs: no such checkpoint file: {path}")
    try:
        state = torch.load(path, map_location="cpu")
    except Exception as error:  # torch raises several types for truncated or foreign files
        raise ConfigError(f"--inputs: cannot read {path} as a fairseq checkpoint ({type(error).__name__})") from None
    if not isinstance(state, dict) or "model" not in state:
        raise ConfigError(f"--inputs: {path} is not a fairseq checkpoint (no 'model' entry)")
    return state


def average_checkpoints(paths):
    """Mean of every floating-point model tensor over ``paths``; non-float tensors (filters, masks,
    token ids) must be equal in every input and are kept; other entries come from the last path."""
    sums = collections.OrderedDict()
    state = None
    for path in paths:
        state = load(path)
        model = state["model"]
        if sums and model.keys() != sums.keys():
            raise ConfigError(f"--inputs: {path} has different parameters than {paths[0]}")
        for name, tensor in model.items():
            if name in sums and tensor.is_floating_point():
                sums[name] += tensor.double()
            elif name in sums:
                if not torch.equal(tensor, sums[name]):
                    raise ConfigError(
                        f"--inputs: {path} and {paths[0]} differ in {name} ({tensor.dtype}), which cannot be averaged; "
                        "average checkpoints of one training run"
                    )
            else:
                sums[name] = tensor.double() if tensor.is_floating_point() else tensor.clone()
    state["model"] = collections.OrderedDict(
        (name, (total / len(paths)).to(state["model"][name].dtype) if total.is_floating_point() else total)
        for name, total in sums.items()
    )
    return state


def parse_args(argv=None):
    parser = command_parser("fairseq-plugins-average", __doc__)
    parser.add_argument("--inputs", nargs="+", required=True, help="checkpoint files, or one directory")
    parser.add_argument("--output", required=True, help="where to write the averaged checkpoint")
    count = parser.add_mutually_exclusive_group()
    count.add_argument("--num-epoch-checkpoints", type=bounded(int, ">= 1"),
                       help="average the last N checkpoint{epoch}.pt")
    count.add_argument("--num-update-checkpoints", type=bounded(int, ">= 1"),
                       help="average the last N checkpoint_{epoch}_{update}.pt")
    parser.add_argument("--checkpoint-upper-bound", type=int, help="ignore checkpoints after this epoch/update")
    args = parser.parse_args(argv)
    count = args.num_epoch_checkpoints or args.num_update_checkpoints
    if count is not None:
        if len(args.inputs) != 1 or not os.path.isdir(args.inputs[0]):
            parser.error("--num-epoch-checkpoints/--num-update-checkpoints need --inputs to be one directory")
    elif any(os.path.isdir(path) for path in args.inputs):
        parser.error("--inputs is a directory: add --num-epoch-checkpoints N or --num-update-checkpoints N")
    return args


def main(argv=None):
    args = parse_args(argv)
    paths = args.inputs
    if args.num_epoch_checkpoints or args.num_update_checkpoints:
        by_updates = args.num_update_checkpoints is not None
        count = args.num_update_checkpoints if by_updates else args.num_epoch_checkpoints
        paths = last_checkpoints(args.inputs[0], count, by_updates, args.checkpoint_upper_bound)
    if os.path.abspath(args.output) in map(os.path.abspath, paths):
        raise ConfigError(f"--output {args.output} is one of the inputs; choose another file")
    output_dir = os.path.dirname(os.path.abspath(args.output))
    if not os.path.isdir(output_dir):
        raise ConfigError(f"--output: directory {output_dir} does not exist")

    state = average_checkpoints(paths)
    handle, temporary = tempfile.mkstemp(dir=output_dir, suffix=".pt.tmp")
    os.close(handle)
    try:
        torch.save(state, temporary)
        os.replace(temporary, args.output)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    print(f"averaged {len(paths)} checkpoints into {args.output}: " + " ".join(paths), file=sys.stderr)


if __name__ == "__main__":
    main()
