"""Rank training instances as mislabelled-label suspects and pick the instances to remove.

    python rank.py --data DATA --influence INFLUENCE_DIR --checkpoint-dir CKPT_DIR --out RESULTS_DIR

Rankings (most suspect first): turn-over dropout self-influence, turn-over dropout summed
validation influence (most negative first), captum's TracInCP self-influence on the same run's
epoch checkpoints, the full network's training loss, and a seeded random order. Writes
``precision.json`` (precision@k of flipped labels for each ranking), ``precision.png``, and
``remove_harmful.npy`` / ``remove_random.npy``: the ``--remove`` most harmful training instances
by summed validation influence, and as many at random.
"""

import argparse
import glob
import json
import logging
import os
import re
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from baselines import load_model, load_split, losses, tracincp  # noqa: E402

FRACTIONS = (0.02, 0.05, 0.1, 0.2)  # k as a fraction of the training set; 0.1 = the number flipped


def epoch_checkpoints(directory):
    paths = glob.glob(os.path.join(directory, "checkpoint[0-9]*.pt"))
    return sorted(paths, key=lambda p: int(re.search(r"checkpoint(\d+)\.pt$", p).group(1)))


def precision_at(order, flipped, k):
    return float(flipped[order[:k]].mean())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--influence", required=True, help="fairseq-plugins-influence --out directory")
    parser.add_argument("--checkpoint-dir", required=True)
    parser.add_argument("--remove", type=float, default=0.1, help="fraction of the training set removed")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, force=True)

    flipped = np.load(os.path.join(args.data, "flipped.npy"))
    images, labels = load_split(args.data, "train")
    checkpoints = epoch_checkpoints(args.checkpoint_dir)
    model = load_model(os.path.join(args.checkpoint_dir, "checkpoint_last.pt"), args.data)
    started = time.perf_counter()
    tracin = tracincp(model, checkpoints, images, labels).self_influence().numpy()
    tracin_seconds = time.perf_counter() - started
    model = load_model(os.path.join(args.checkpoint_dir, "checkpoint_last.pt"), args.data)  # TracInCP leaves the weights it loaded last
    summed = np.load(os.path.join(args.influence, "summed_influence.npy"))
    orders = {
        "turn-over dropout, self-influence": np.argsort(-np.load(os.path.join(args.influence, "self_influence.npy"))),
        "turn-over dropout, summed validation influence": np.argsort(summed),
        f"TracInCP self-influence ({len(checkpoints)} checkpoints)": np.argsort(-tracin),
        "training loss": np.argsort(-losses(model, images, labels)),
        "random": np.random.default_rng(args.seed).permutation(len(flipped)),
    }
    ks = [round(f * len(flipped)) for f in FRACTIONS]
    table = {name: {k: precision_at(order, flipped, k) for k in ks} for name, order in orders.items()}
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "precision.json"), "w") as file:
        json.dump({"train": len(flipped), "flipped": int(flipped.sum()), "k": ks, "precision": table,
                   "tracincp_seconds": tracin_seconds}, file, indent=1)
    count = round(args.remove * len(flipped))
    np.save(os.path.join(args.out, "remove_harmful.npy"), orders["turn-over dropout, summed validation influence"][:count])
    np.save(os.path.join(args.out, "remove_random.npy"), orders["random"][:count])
    print(f"precision@k of flipped labels ({int(flipped.sum())} of {len(flipped)} flipped):")
    for name, row in table.items():
        print(f"  {name:<50} " + "  ".join(f"@{k}: {p:.3f}" for k, p in row.items()))
    save_plot(os.path.join(args.out, "precision.png"), orders, flipped)


def save_plot(path, orders, flipped):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(6, 4))
    ks = np.arange(1, len(flipped) // 4 + 1)
    for name, order in orders.items():
        axes.plot(ks, np.cumsum(flipped[order[: len(ks)]]) / ks, label=name)
    axes.axvline(flipped.sum(), color="grey", linestyle=":", linewidth=1)
    axes.set(xlabel="k (top-ranked training instances)", ylabel="precision@k of flipped labels", ylim=(0, 1.02))
    axes.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
