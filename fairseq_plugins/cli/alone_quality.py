"""``fairseq-plugins-alone-quality``: BLEU of ALONE embeddings against standard ones, same budget.

ALONE's claim (Takase & Kobayashi, 2020): embeddings built from one vector and fixed
random filters reach quality comparable to standard embeddings with far fewer
embedding parameters. This command builds the quickstart's toy corpus once, trains the
quickstart's model (2+2 layers, d=128, shared embeddings, ``--max-update`` updates)
once per ``--variants`` entry and ``--seeds`` seed with the real fairseq-train, decodes
the test split with fairseq-generate (beam 4) and prints, per variant, the embedding
parameters and the BLEU mean, sample std and each seed's score (``--json``: ``bleu`` and
``valid_nll``, the last validation's nll_loss, each ``{"mean", "std", "by_seed"}``)::

    fairseq-plugins-alone-quality --work-dir alone-quality --seeds 1,2,3 --json

Variants: ``standard`` (a V x d table), ``alone-binary`` and ``alone-real`` (ALONE with
binary or Gaussian filters, inner dimension 4 d, the package's defaults otherwise).
"""

import os

from fairseq_plugins.cli.common import (
    add_json_output, command_parser, seed_statistics, setup_logging, write_results,
)
from fairseq_plugins.cli.dataless import model_from_flags
from fairseq_plugins.cli.params import count_parameters
from fairseq_plugins.cli.toy_experiment import SMALL_MODEL, final_valid_nll, generate_and_score, preprocess, read_lines, train
from fairseq_plugins.options import bounded
from fairseq_plugins.synthetic_translation import write_corpus

SRC, TGT = "en", "xx"
VARIANTS = {
    "standard": ["--embeddings", "standard"],
    "alone-binary": ["--embeddings", "alone", "--alone-filter", "binary"],
    "alone-real": ["--embeddings", "alone", "--alone-filter", "real"],
}


def parse_args(argv=None):
    parser = command_parser("fairseq-plugins-alone-quality", __doc__)
    parser.add_argument("--work-dir", default="alone-quality", help="new or empty directory for every output")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, among {','.join(VARIANTS)}")
    parser.add_argument("--seeds", default="1,2,3", help="comma-separated training seeds")
    parser.add_argument("--max-update", type=bounded(int, ">= 1"), default=600)
    parser.add_argument("--train-size", type=bounded(int, ">= 1"), default=20000, help="toy corpus training pairs")
    parser.add_argument("--test-size", type=bounded(int, ">= 1"), default=500,
                        help="toy corpus validation and test pairs, each")
    add_json_output(parser)
    args = parser.parse_args(argv)
    args.variants = args.variants.split(",")
    unknown = [name for name in args.variants if name not in VARIANTS]
    if unknown or not args.variants:
        parser.error(f"--variants must be a comma-separated list among {','.join(VARIANTS)} (got {','.join(unknown)})")
    try:
        args.seeds = [int(seed) for seed in args.seeds.split(",")]
    except ValueError:
        parser.error(f"--seeds must be comma-separated integers (got {args.seeds!r})")
    if os.path.exists(args.work_dir) and os.listdir(args.work_dir):
        parser.error(f"--work-dir {args.work_dir} already exists and is not empty; remove it or pass a new --work-dir")
    return args


def embedding_parameters(variant, vocab_size):
    model = model_from_flags(["--arch", "composable_transformer", *SMALL_MODEL, *VARIANTS[variant]], vocab_size)
    return count_parameters(model)["embedding"]


def main(argv=None):
    args = parse_args(argv)
    setup_logging(quiet=True)
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
        results[variant] = {
            "embedding_parameters": embedding_parameters(variant, vocab_size),
            "bleu": seed_statistics(scores, digits=2),
            "valid_nll": seed_statistics(valid_nll, digits=3),  # bits per target token at the last validation: converged?
        }
    report = {"max_update": args.max_update, "train_size": args.train_size, "vocab_size": vocab_size,
              "test_pairs": len(references), "seeds": args.seeds, "variants": results}
    write_results(report, args, table)


def table(report):
    lines = [f"BLEU on the toy test split ({report['test_pairs']} pairs), {report['max_update']} updates, "
             f"seeds {report['seeds']}"]
    for variant, row in report["variants"].items():
        bleu = row["bleu"]
        spread = f" +- {bleu['std']:.2f}" if bleu["std"] is not None else ""
        lines.append(f"{variant:>14}: {row['embedding_parameters']:>9,} embedding parameters, BLEU {bleu['mean']:.2f}"
                     f"{spread} ({', '.join(f'{v:.2f}' for v in bleu['by_seed'].values())})")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
