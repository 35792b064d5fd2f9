"""``fairseq-plugins-params``: parameter counts of any architecture, embeddings versus the rest.

Builds the model from ordinary fairseq flags over a dummy dictionary of
``--vocab-size`` symbols (no data needed) and prints the number of trainable
parameters in token embeddings (input tables or ALONE's shared vector and FFN,
plus an untied output projection) and in the rest of the network. For ALONE
embeddings it also prints the filter statistics: density (fraction of nonzero
filter entries) and the fraction of distinct filters::

    fairseq-plugins-params --arch alone_transformer_wmt_en_de --share-all-embeddings --vocab-size 32000
    fairseq-plugins-params --task language_modeling --arch spike_transformer_lm_350m --vocab-size 50257
"""

import sys

from fairseq_plugins.cli.common import add_json_output, setup_logging, write_results
from fairseq_plugins.cli.dataless import build_model, model_flags_parser, parse_model_flags
from fairseq_plugins.modules.alone import AloneEmbedding, filter_statistics
from fairseq_plugins.options import bounded


def model_stacks(model):
    """The encoder and decoder of a translation model, the decoder of a language model."""
    return {stack: getattr(model, stack) for stack in ("encoder", "decoder") if hasattr(model, stack)}


def count_parameters(model):
    """``{"embedding": n, "rest": n, "total": n}``; shared tensors are counted once."""
    embedding_modules = {stack.embed_tokens for stack in model_stacks(model).values()}
    output_projection = getattr(model.decoder, "output_projection", None)
    if output_projection is not None:
        embedding_modules.add(output_projection)
    embedding_ids = {id(p) for module in embedding_modules for p in module.parameters()}
    unique = {id(p): p for p in model.parameters() if p.requires_grad}
    embedding = sum(p.numel() for key, p in unique.items() if key in embedding_ids)
    total = sum(p.numel() for p in unique.values())
    return {"embedding": embedding, "rest": total - embedding, "total": total}


def parse_args(argv):
    parser = model_flags_parser("fairseq-plugins-params", __doc__.split("\n\n")[0])
    counter = parser.add_argument_group("parameter counts")
    counter.add_argument("--vocab-size", type=bounded(int, ">= 5"), default=32000,
                         help="dictionary size: fairseq's 4 special symbols and at least one word")
    add_json_output(counter)
    return parse_model_flags(parser, argv)


def main(argv=None):
    setup_logging(quiet=True)
    args = parse_args(sys.argv[1:] if argv is None else argv)
    model = build_model(args, args.vocab_size)
    report = {"arch": args.arch, "vocab_size": args.vocab_size, "parameters": count_parameters(model)}
    alone = {name: stack.embed_tokens for name, stack in model_stacks(model).items()}
    report["alone_filters"] = {
        stack: filter_statistics(embedding) for stack, embedding in alone.items() if isinstance(embedding, AloneEmbedding)
    }
    write_results(report, args, table)


def table(report):
    counts = report["parameters"]
    lines = [f"{report['arch']}, vocabulary {report['vocab_size']}"]
    lines += [f"{name:>10}: {counts[name]:>12,} parameters" for name in ("embedding", "rest", "total")]
    lines += [f"{stack} ALONE filters: density {stats['density']:.4f}, distinct {stats['distinct_fraction']:.4f}"
              for stack, stats in report["alone_filters"].items()]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
