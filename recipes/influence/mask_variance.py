"""How much of turn-over dropout's influence is the mask, not the instance.

    python mask_variance.py --data DATA --influence INFLUENCE_DIR --checkpoint CKPT --out FILE.json

``I(j, t) = L(t; 1 - m_j) - L(t; m_j)`` compares two half-networks; how good a random half is
varies from mask to mask, whichever instance owns it. This measures that term against the
instances' own effect, on the recipe's noisy run (flipped labels known):

- the fraction of the variance of summed validation influence ``S_j`` and of self-influence that
  the masks explain (least squares on the mask units, ``modules/turnover_dropout.mask_adjusted``);
- the separation of flipped and clean instances (difference of means over the pooled std) and
  precision@k of flipped labels, for the raw and the mask-adjusted scores;
- per test instance, the variance of ``I(., t)`` the masks explain, averaged over test instances.
"""

import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from baselines import load_model, load_split  # noqa: E402

from fairseq_plugins.modules.turnover_dropout import instance_masks, mask_adjusted, turnover_layers, use_instances  # noqa: E402


def training_masks(model, images, count):
    """(count, units) bool: every turn-over layer's mask of instances 0..count-1, side by side."""
    layers = turnover_layers(model)
    widths = {}
    hooks = [layer.register_forward_hook(lambda module, inputs, output, i=i: widths.__setitem__(i, output.size(-1)))
             for i, layer in enumerate(layers)]
    with torch.no_grad(), use_instances(model, torch.zeros(2, dtype=torch.long)):
        model(images[:2])
    for hook in hooks:
        hook.remove()
    ids = torch.arange(count)
    return torch.cat([instance_masks(ids, widths[i], int(layer.seed)) for i, layer in enumerate(layers)], dim=1)


def separation(scores, flipped, sign):
    """(mean over flipped - mean over clean) / pooled std, in the direction the ranking reads (sign)."""
    scores = sign * np.asarray(scores, dtype=np.float64)
    a, b = scores[flipped], scores[~flipped]
    return float((a.mean() - b.mean()) / np.sqrt((a.var() + b.var()) / 2))


def precision(scores, flipped, sign, k):
    return float(flipped[np.argsort(-sign * np.asarray(scores))[:k]].mean())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--influence", required=True, help="fairseq-plugins-influence --out directory")
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    flipped = np.load(os.path.join(args.data, "flipped.npy"))
    images, _ = load_split(args.data, "train")
    model = load_model(args.checkpoint, args.data)
    masks = training_masks(model, images, len(flipped))
    matrix = np.load(os.path.join(args.influence, "influence.npy"))  # (test, train)
    scores = {"summed validation influence": (matrix.sum(0), -1),  # most negative = most harmful
              "self-influence": (np.load(os.path.join(args.influence, "self_influence.npy")), 1)}
    k = int(flipped.sum())
    # Least squares on p units explains about p / N of the variance of pure noise.
    result = {"train": len(flipped), "flipped": k, "mask_units": masks.size(1), "k": k,
              "chance_variance_explained": masks.size(1) / len(flipped), "scores": {}}
    for name, (raw, sign) in scores.items():
        adjusted, explained = mask_adjusted(raw, masks)
        result["scores"][name] = {
            "variance_explained_by_masks": explained,
            "separation": {"raw": separation(raw, flipped, sign), "mask_adjusted": separation(adjusted.numpy(), flipped, sign)},
            "precision_at_k": {"raw": precision(raw, flipped, sign, k), "mask_adjusted": precision(adjusted.numpy(), flipped, sign, k)},
        }
    per_test = [mask_adjusted(row, masks)[1] for row in matrix[:: max(1, len(matrix) // 100)]]
    result["per_test_instance_variance_explained_by_masks"] = float(np.mean(per_test))
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
