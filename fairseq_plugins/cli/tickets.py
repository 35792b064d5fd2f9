"""``fairseq-plugins-tickets``: members of a multi-ticket ensemble from one pretrained model, via fairseq-train.

    fairseq-plugins-tickets DATA --pretrained CKPT --out DIR --method {dense,bagging,base,active,random} \\
        --members N [--target-ratio 0.3] [--rounds 3] [--tau T (active, random)] [--seed S] -- <fairseq-train options>

The fairseq-train options must name ``--task`` (sentence_prediction, image_classification or
translation: it runs as ``ticket_<task>``, see ``tasks/ticket_training.py``) and ``--max-update
N``: every fairseq-train run below is N updates with ``--lr-scheduler polynomial_decay
--total-num-update N --end-learning-rate 0``, so the LR reaches 0 at the end of every round.
Member i uses ``--seed S+i`` and writes into ``DIR/member-<i>``:

- ``dense``: one finetune from CKPT; ``bagging``: the same on a random 90% of the training set.
- ``base``, ``active``, ``random`` (BASE-LT, ACTIVE-LT, RANDOM-LT): ``--rounds`` pruning rounds
  (``round-<r>/``: finetune with the diversity regulariser of weight ``--tau``, then global
  magnitude pruning of a further target-ratio / rounds of the original prunable count,
  ``round-<r>/mask.pt``), each starting from the pretrained model rewound under the previous
  round's mask (the classification head rewinds to its initial value, ``init.pt``); then the
  ticket's own finetune from ``start.pt`` (the rewound model) with the final mask held. A
  finished round keeps its mask and ``train.log``; its checkpoints are removed.
  ACTIVE-LT members are built one after another (each is pushed away from the earlier members'
  masks, ``penalty.pt``); RANDOM-LT draws its penalty mask from the member's seed.

Each member ends as ``checkpoint_last.pt`` (the end of its LR schedule; ``checkpoint_best.pt``
as fairseq keeps it) and, for tickets, ``mask.pt`` beside it; ``time.json`` holds the wall time
of its fairseq-train runs. Every fairseq command is printed to stderr before it runs; its log goes to
``train.log`` in its save directory. A re-run skips finished members and rounds. Evaluate with
``fairseq-plugins-ensemble DATA --path DIR/member-0/checkpoint_last.pt:...``.
"""

import argparse
import json
import os
import shutil
import sys
import time

import torch

import fairseq_plugins  # noqa: F401  (fills fairseq's registries)
from fairseq_plugins.cli.checkpoints import read_checkpoint_state
from fairseq_plugins.cli.common import command_parser
from fairseq_plugins.cli.fairseq_runs import fairseq_command, run_fairseq
from fairseq_plugins.cli.user_dir import user_dir
from fairseq_plugins.errors import ConfigError
from fairseq_plugins.modules import pruning
from fairseq_plugins.options import bounded
from fairseq_plugins.tasks.ticket_training import TICKET_PREFIX, TICKET_TASKS

METHODS = ("dense", "bagging", "base", "active", "random")
REGULARISED_METHODS = ("active", "random")
BAGGING_FRACTION = 0.9
SET_BY_US = ("--lr-scheduler", "--total-num-update", "--end-learning-rate", "--save-dir", "--seed",
             "--finetune-from-model", "--restore-file", "--user-dir")


def parse_args(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    ours, train_options = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    parser = command_parser("fairseq-plugins-tickets", __doc__)
    parser.add_argument("data", help="the data directory (fairseq-train's positional argument)")
    parser.add_argument("--pretrained", required=True, metavar="CKPT", help="the pretrained fairseq checkpoint")
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory (member-<i>/ inside)")
    parser.add_argument("--method", required=True, choices=METHODS, metavar="{" + ",".join(METHODS) + "}")
    parser.add_argument("--members", type=bounded(int, ">= 1"), required=True, help="ensemble members to build")
    parser.add_argument("--target-ratio", type=bounded(float, "(0, 1)"), default=0.3,
                        help="fraction of the prunable weights pruned (default 0.3)")
    parser.add_argument("--rounds", type=bounded(int, ">= 1"), default=3,
                        help="pruning rounds (default 3: 10%% of the original each)")
    parser.add_argument("--tau", type=float, help="weight of the diversity regulariser at the peak LR; required by active "
                        "and random, whose regulariser it is (the paper tunes it; the recipe uses 1e-3, SMALL=1 1e-2)")
    parser.add_argument("--seed", type=int, default=1, help="member i trains with seed S+i (default 1)")
    args = parser.parse_args(ours)
    args.train_options = train_options
    if args.method == "active" and args.members < 2:
        parser.error("--method active needs --members 2 or more (each member is pushed away from the earlier ones)")
    if args.method in REGULARISED_METHODS and not (args.tau or 0) > 0:
        # without the regulariser ACTIVE-LT and RANDOM-LT are BASE-LT with other seeds
        parser.error(f"--method {args.method} needs --tau > 0 (the diversity regulariser's weight; the paper tunes it, "
                     f"the recipe uses 1e-3); with no regulariser use --method base")
    if args.method not in REGULARISED_METHODS and args.tau is not None:
        parser.error(f"--tau applies to --method {' and '.join(REGULARISED_METHODS)} only (got --method {args.method})")
    for flag in SET_BY_US:
        if any(option == flag or option.startswith(flag + "=") for option in train_options):
            parser.error(f"{flag} is set by fairseq-plugins-tickets; leave it out of the fairseq-train options")
    args.task = option_value(parser, train_options, "--task", f"one of {', '.join(TICKET_TASKS)}")
    if args.task not in TICKET_TASKS:
        parser.error(f"--task must be one of {', '.join(TICKET_TASKS)} (got {args.task!r})")
    max_update = option_value(parser, train_options, "--max-update", "the updates of every round")
    try:  # a fairseq-train option, bounded here as our own flags are
        args.max_update = bounded(int, ">= 1")(max_update)
    except argparse.ArgumentTypeError as error:
        parser.error(f"argument --max-update: {error}")
    return args


def option_value(parser, options, flag, what):
    values = [options[i + 1] for i, option in enumerate(options[:-1]) if option == flag]
    values += [option.split("=", 1)[1] for option in options if option.startswith(flag + "=")]
    if not values:
        parser.error(f"give {flag} ({what}) among the fairseq-train options after --")
    return values[-1]


def fairseq_train_options(args):
    """The user's options with --task replaced by its ticket task and our LR schedule appended."""
    options, replace_next = [], False
    for option in args.train_options:
        if replace_next:
            option, replace_next = TICKET_PREFIX + args.task, False
        elif option == "--task":
            replace_next = True
        elif option.startswith("--task="):
            option = "--task=" + TICKET_PREFIX + args.task
        options.append(option)
    return options + ["--lr-scheduler", "polynomial_decay", "--total-num-update", str(args.max_update),
                      "--end-learning-rate", "0", "--user-dir", user_dir()]


def train(args, save_dir, start, seed, extra):
    """One fairseq-train run (finetuning from ``start``) into ``save_dir``; its wall time goes to ``save_dir/seconds``."""
    began = time.perf_counter()
    run_fairseq(fairseq_command("train") + [args.data, *fairseq_train_options(args), "--finetune-from-model", start,
                                            "--save-dir", save_dir, "--seed", seed, *extra],
                os.path.join(save_dir, "train.log"))
    with open(os.path.join(save_dir, "seconds"), "w") as file:
        file.write(f"{time.perf_counter() - began:.3f}")


def read_seconds(save_dir):
    with open(os.path.join(save_dir, "seconds")) as file:
        return float(file.read())


def load_raw(path):
    # our own out directory, written by fairseq-train: a full (trusted) checkpoint dict
    return torch.load(path, map_location="cpu", weights_only=False)


def write_rewound(template, init, masks, path):
    """A fairseq checkpoint: ``template`` (a checkpoint of the same model) holding ``init`` rewound under ``masks``."""
    state = load_raw(template)
    state["model"] = pruning.rewind(init, masks)
    state.pop("last_optimizer_state", None)  # finetuning starts with a fresh optimizer
    os.makedirs(os.path.dirname(path), exist_ok=True)
    torch.save(state, path + ".tmp")
    os.replace(path + ".tmp", path)


def prunable_masks(state, path):
    names = pruning.prunable_names(state)
    if not names:
        raise ConfigError(f"--pretrained {path}: none of its parameters is prunable (attention q/k/v/out projections, "
                          "FFN fc1/fc2, a classification head's dense layer, image_classifier hidden layers)")
    return pruning.full_masks(state, names)


class Member:
    def __init__(self, args, index):
        self.args, self.index, self.seed = args, index, args.seed + index
        self.dir = os.path.join(args.out, f"member-{index}")
        self.done = os.path.join(self.dir, "done")

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def build(self, earlier_masks):
        if os.path.exists(self.done):
            print(f"skip member-{self.index} (done; remove {self.done} to redo)", flush=True)
            return
        args = self.args
        if args.method in ("dense", "bagging"):
            extra = ["--bagging-fraction", BAGGING_FRACTION, "--bagging-seed", self.seed] if args.method == "bagging" else []
            train(args, self.dir, args.pretrained, self.seed, extra)
        else:
            self.build_ticket(earlier_masks)
        runs = [self.dir] + [self.path(f"round-{r}") for r in range(1, args.rounds + 1)]
        seconds = sum(read_seconds(run) for run in runs if os.path.exists(os.path.join(run, "seconds")))
        with open(self.path("time.json"), "w") as file:
            json.dump({"seconds": seconds, "method": args.method}, file)
        open(self.done, "w").close()

    def build_ticket(self, earlier_masks):
        args = self.args
        os.makedirs(self.dir, exist_ok=True)  # ACTIVE-LT writes its penalty before the first round runs
        init = self.path("init.pt")
        regulariser = []
        if args.method == "random":
            regulariser = ["--ticket-random-penalty", args.target_ratio, "--ticket-penalty-seed", self.seed]
        elif args.method == "active" and earlier_masks:
            torch.save(pruning.active_penalty(earlier_masks), self.path("penalty.pt"))
            regulariser = ["--ticket-penalty", self.path("penalty.pt")]
        if regulariser:
            regulariser += ["--ticket-tau", args.tau]
        masks = None
        for r in range(1, args.rounds + 1):
            round_dir = self.path(f"round-{r}")
            mask_path = os.path.join(round_dir, "mask.pt")
            if os.path.exists(mask_path):
                masks = torch.load(mask_path, weights_only=True)
                continue
            if r == 1:
                start, held = args.pretrained, ["--ticket-save-init", init]
            else:
                start = os.path.join(round_dir, "start.pt")
                write_rewound(self.template(), torch.load(init, weights_only=True), masks, start)
                held = ["--ticket-mask", self.path(f"round-{r - 1}", "mask.pt")]
            train(args, round_dir, start, self.seed, held + regulariser)
            weights = load_raw(os.path.join(round_dir, "checkpoint_last.pt"))["model"]
            masks = masks or prunable_masks(weights, args.pretrained)
            _, total = pruning.count(masks)
            masks = pruning.magnitude_prune(weights, masks, pruning.pruned_target(r, args.rounds, args.target_ratio, total))
            torch.save(masks, mask_path)
            self.remove_checkpoints(r)
            pruned, total = pruning.count(masks)
            print(f"member-{self.index} round {r}: {pruned} of {total} prunable weights pruned ({pruned / total:.1%})", flush=True)
        final_mask = self.path(f"round-{args.rounds}", "mask.pt")
        start = self.path("start.pt")
        write_rewound(self.template(), torch.load(init, weights_only=True), masks, start)
        train(args, self.dir, start, self.seed, ["--ticket-mask", final_mask])
        shutil.copyfile(final_mask, self.path("mask.pt"))

    def template(self):
        """A checkpoint of the finetuned architecture, whose model the rewound weights replace."""
        return self.path("round-1", "checkpoint_last.pt")

    def remove_checkpoints(self, r):
        """A finished round keeps its mask and log; its checkpoints go (round 1's last one is the template)."""
        round_dir = self.path(f"round-{r}")
        for name in ["checkpoint_best.pt", "start.pt"] + (["checkpoint_last.pt"] if r > 1 else []):
            if os.path.exists(os.path.join(round_dir, name)):
                os.remove(os.path.join(round_dir, name))

    def mask(self):
        path = self.path("mask.pt")
        return torch.load(path, weights_only=True) if os.path.exists(path) else None


def main(argv=None):
    args = parse_args(argv)
    pretrained = read_checkpoint_state(args.pretrained, "--pretrained")["model"]
    prunable_masks(pretrained, args.pretrained)
    os.makedirs(args.out, exist_ok=True)
    earlier = []
    for index in range(args.members):
        member = Member(args, index)
        member.build(earlier)
        if member.mask() is not None:
            earlier.append(member.mask())
    for index in range(args.members):
        member = Member(args, index)
        with open(member.path("time.json")) as file:
            seconds = json.load(file)["seconds"]
        print(f"member-{index}: {member.path('checkpoint_last.pt')} ({seconds:.1f} s of fairseq-train)")


if __name__ == "__main__":
    main()
