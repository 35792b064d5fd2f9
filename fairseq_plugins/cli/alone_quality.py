"""``fairseq-plugins-alone-quality``: BLEU of ALONE embeddings against standard ones, same budget.

ALONE's claim (Takase & Kobayashi, 2020): embeddings built from one vector and fixed
random filters reach quality comparable to standard embeddings with far fewer
embedding parameters. This command builds the quickstart's toy corpus once, trains the
quickstart's model (2+2 layers, d=128, shared embeddings, ``--max-update`` updates)
once per ``--variants`` entry and ``--seeds`` seed with the real fairseq-train, decodes
the test split with fairseq-generate (beam 4) and prints, per variant, the embedding
parameters and the BLEU mean, sample std and each seed's score::

    fairseq-plugins-alone-quality --work-dir alone-quality --seeds 1,2,3 --json

Variants: ``standard`` (a V x d table), ``alone-binary`` and ``alone-real`` (ALONE with
binary or Gaussian filters, inner dimension 4 d, the package's defaults otherwise).
"""

import argparse
import json
import logging
import os
import statistics

from fairseq_plugins.cli.dataless import model_from_flags
from fairseq_plugins.cli.params import count_parameters
from fairseq_plugins.cli.quickstart import SMALL_MODEL, final_valid_nll, generate_and_score, preprocess, read_lines, train
from fairseq_plugins.synthetic_translation import write_corpus

SRC, TGT = "en", "xx"
VARIANTS = {
    "standard": ["--embeddings", "standard"],
    "alone-binary": ["--embeddings", "alone", "--alone-filter", "binary"],
    "alone-real": ["--embeddings", "alone", "--alone-filter", "real"],
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="fairseq-plugins-alone-quality", description=__doc__.split("\n\n")[0],
                                     usage=argparse.SUPPRESS)
    parser.add_argument("--work-dir", default="alone-quality", help="new or empty directory for every output")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, among {','.join(VARIANTS)}")
    parser.add_argument("--seeds", default="1,2,3", help="comma-separated training seeds")
    parser.add_argument("--max-update", type=int, default=600)
    parser.add_argument("--train-size", type=int, default=20000, help="toy corpus training pairs")
    parser.add_argument("--test-size", type=int, default=500, help="toy corpus validation and test pairs, each")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")
    args = parser.parse_args(argv)
    args.variants = args.variants.split(",")
    unknown = [name for name in args.variants if name not in VARIANTS]
    if unknown or not args.variants:
        parser.error(f"--variants must be a comma-separated list among {','.join(VARIANTS)} (got {','.join(unknown)})")
    try:
        args.seeds = [int(seed) for seed in args.seeds.split(",")]
    except ValueError:
        parser.error(f"--seeds must be comma-separated integers (got {args.seeds!r})")
    if min(args.max_update, args.train_size, args.test_size) < 1:
        parser.error("--max-update, --train-size and --test-size must be at least 1")
    if os.path.exists(args.work_dir) and os.listdir(args.work_dir):
        parser.error(f"--work-dir {args.work_dir} already exists and is not empty; remove it or pass a new --work-dir")
    return args


def embedding_parameters(variant, vocab_size):
    model = model_from_flags(["--arch", "composable_transformer", *SMALL_MODEL, *VARIANTS[variant]], vocab_size)
    return count_parameters(model)["embedding"]


def main(argv=None):
    logging.basicConfig(level=logging.WARNING, force=True)
    args = parse_args(argv)
    work = args.work_dir
    raw = write_corpus(os.path.join(work, "raw"), (("train", args.train_size), ("valid", args.test_size), ("test", args.test_size)),
                       src=SRC, tgt=TGT, seed=1)
    data = os.path.join(work, "data-bin")
    preprocess(raw, SRC, TGT, data, work)
    references = read_lines(os.path.join(raw, f"test.{TGT}"))
    with open(os.path.join(data, f"dict.{SRC}.txt"), encoding="utf-8") as f:
        vocab_size = 4 + sum(1 for _ in f)  # fairseq's 4 special symbols precede the file's words
    results = {}
    for variant in args.variants:
        scores, valid_nll = {}, {}
        for seed in args.seeds:
            name = f"{variant}-seed{seed}"
            save_dir = os.path.join(work, f"checkpoints-{name}")
            train(data, save_dir, ["--arch", "composable_transformer", *VARIANTS[variant]], args.max_update, seed,
                  work, name=f"train-{name}")
            score, _ = generate_and_score(data, os.path.join(save_dir, "checkpoint_last.pt"), references, work,
                                          name=f"generate-{name}")
            scores[seed] = round(score.score, 2)
            valid_nll[seed] = final_valid_nll(os.path.join(work, f"train-{name}.log"))
        values = list(scores.values())
        results[variant] = {
            "embedding_parameters": embedding_parameters(variant, vocab_size),
            "bleu_mean": round(statistics.mean(values), 2),
            "bleu_std": round(statistics.stdev(values), 2) if len(values) > 1 else None,
            "bleu_by_seed": scores,
            "valid_nll_by_seed": valid_nll,  # bits per target token at the last validation: converged?
        }
    report = {"max_update": args.max_update, "train_size": args.train_size, "vocab_size": vocab_size,
              "test_pairs": len(references), "seeds": args.seeds, "variants": results}
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"BLEU on the toy test split ({len(references)} pairs), {args.max_update} updates, seeds {args.seeds}")
    for variant, row in results.items():
        spread = f" +- {row['bleu_std']:.2f}" if row["bleu_std"] is not None else ""
        print(f"{variant:>14}: {row['embedding_parameters']:>9,} embedding parameters, BLEU {row['bleu_mean']:.2f}"
              f"{spread} ({', '.join(f'{v:.2f}' for v in row['bleu_by_seed'].values())})")


if __name__ == "__main__":
    main()
