"""Split a CoNLL-style file's sentences into train/valid/test .conll files by a fixed permutation.

    python split_conll.py INPUT OUT_DIR [--valid N] [--test N] [--train N] [--seed 1]

Sentences are separated by lines holding only whitespace; every token line is written as
``token<TAB>tag`` (first and last column). The permutation depends on ``--seed`` only.
"""

import argparse
import os
import random
import sys


def read_sentences(path):
    sentences, current = [], []
    with open(path, encoding="utf-8") as file:
        for line in file:
            columns = line.split()
            if columns:
                current.append(f"{columns[0]}\t{columns[-1]}")
            elif current:
                sentences.append(current)
                current = []
    if current:
        sentences.append(current)
    return sentences


def main(argv=None):
    parser = argparse.ArgumentParser(prog="split_conll.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("input")
    parser.add_argument("out_dir")
    parser.add_argument("--valid", type=int, default=240, help="sentences in valid.conll (default 240)")
    parser.add_argument("--test", type=int, default=240, help="sentences in test.conll (default 240)")
    parser.add_argument("--train", type=int, default=0, help="keep only the first N training sentences (0: all)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    sentences = read_sentences(args.input)
    if args.valid + args.test >= len(sentences):
        sys.exit(f"split_conll.py: error: {args.input} has {len(sentences)} sentences, too few for "
                 f"--valid {args.valid} and --test {args.test}")
    random.Random(args.seed).shuffle(sentences)
    splits = {"valid": sentences[:args.valid], "test": sentences[args.valid:args.valid + args.test],
              "train": sentences[args.valid + args.test:]}
    if args.train > 0:
        splits["train"] = splits["train"][:args.train]
    os.makedirs(args.out_dir, exist_ok=True)
    for name, chunk in splits.items():
        with open(os.path.join(args.out_dir, f"{name}.conll"), "w", encoding="utf-8") as file:
            file.write("".join("\n".join(sentence) + "\n\n" for sentence in chunk))
        print(f"{name}: {len(chunk)} sentences")


if __name__ == "__main__":
    main()
