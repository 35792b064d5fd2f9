"""Write an image_classification npz directory whose training labels are partly flipped (seeded).

    python noisy_labels.py --source fashion-mnist --raw-dir /usr/share/datasets/fashion-mnist \
        --train-size 6000 --noise 0.1 --seed 1 --out data/

writes ``train.npz`` (with ``--noise`` of its labels changed to another class drawn uniformly),
``valid.npz`` and ``test.npz`` (clean), and ``flipped.npy`` (bool, one per training instance,
in training-index order = the ``sample["id"]`` fairseq gives it). ``--source digits`` uses
scikit-learn's 8x8 digits with the image_classification task's own split. ``--remove FILE.npy``
(indices into that training split) leaves those instances out of train.npz: data cleansing.
"""

import argparse
import os

import numpy as np

from fairseq_plugins.tasks.image_classification import load_idx, load_sklearn_digits


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", choices=("fashion-mnist", "digits"), required=True)
    parser.add_argument("--raw-dir", default="/usr/share/datasets/fashion-mnist", help="fashion-mnist IDX files")
    parser.add_argument("--train-size", type=int, help="training instances kept (a seeded subset; default all)")
    parser.add_argument("--valid-size", type=int, default=1000, help="fashion-mnist: held-out validation images")
    parser.add_argument("--test-size", type=int, help="test instances kept (a seeded subset; default all)")
    parser.add_argument("--noise", type=float, default=0.1, help="fraction of training labels flipped")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--remove", metavar="FILE.npy", help="training indices to leave out of train.npz")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    splits = load_sklearn_digits() if args.source == "digits" else load_idx(args.raw_dir, args.valid_size)
    rng = np.random.default_rng(args.seed)
    for split, size in (("train", args.train_size), ("test", args.test_size)):
        images, labels = splits[split]
        if size is not None and size < len(labels):
            keep = np.sort(rng.choice(len(labels), size, replace=False))
            splits[split] = (images[keep], labels[keep])
    images, labels = splits["train"]
    classes = int(labels.max()) + 1
    flipped = np.zeros(len(labels), dtype=bool)
    flipped[rng.choice(len(labels), round(args.noise * len(labels)), replace=False)] = True
    noisy = labels.copy()
    noisy[flipped] = (labels[flipped] + rng.integers(1, classes, flipped.sum())) % classes
    kept = np.ones(len(labels), dtype=bool)
    if args.remove:
        kept[np.load(args.remove)] = False
    os.makedirs(args.out, exist_ok=True)
    np.savez(os.path.join(args.out, "train.npz"), images=images[kept], labels=noisy[kept])
    for split in ("valid", "test"):
        np.savez(os.path.join(args.out, f"{split}.npz"), images=splits[split][0], labels=splits[split][1])
    np.save(os.path.join(args.out, "flipped.npy"), flipped[kept])
    print(f"{args.out}: train {kept.sum()} ({flipped[kept].sum()} labels flipped), valid {len(splits['valid'][1])}, test {len(splits['test'][1])}")


if __name__ == "__main__":
    main()
