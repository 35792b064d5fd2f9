"""Build fairseq translation models from ordinary command-line flags, with no data on disk.

Used by the probes and counters (``fairseq-plugins-gradnorm``, ``fairseq-plugins-params``),
the benchmarks and the tests: a dictionary of dummy symbols stands in for the
binarized data, shared by source and target so ``--share-all-embeddings`` works.
"""

import argparse

from fairseq import options
from fairseq.data import Dictionary
from fairseq.tasks.translation import TranslationTask

from fairseq_plugins.errors import ConfigError

# fairseq's parser requires the translation task's positional data directory; nothing reads it.
NO_DATA = "(no data)"


def model_flags_parser(prog, description):
    """fairseq's training parser (task translation) for a command of ours; add its own flags, then parse."""
    parser = options.get_training_parser(default_task="translation")
    parser.prog = prog
    parser.description = description
    # fairseq's usage runs to hundreds of lines; without it an error is the one line `prog: error: msg`.
    parser.usage = argparse.SUPPRESS
    return parser


def parse_model_flags(parser, argv):
    input_args = [NO_DATA, *argv]
    if parser.parse_known_args(input_args)[0].arch is None:
        parser.error("--arch is required, e.g. --arch b2t_transformer")
    args = options.parse_args_and_arch(parser, input_args)
    if args.task != "translation":
        parser.error(f"--task {args.task}: only encoder-decoder models (--task translation) are built here")
    return args


def dummy_dictionary(size):
    """A fairseq Dictionary of ``size`` symbols: the 4 special ones and ``w0``, ``w1``, ..."""
    dictionary = Dictionary()
    for i in range(size - len(dictionary)):
        dictionary.add_symbol(f"w{i}")
    return dictionary


def build_translation_model(args, vocab_size):
    """The model fairseq-train would build from ``args``, over a dummy dictionary of ``vocab_size``."""
    dictionary = dummy_dictionary(vocab_size)
    try:
        return TranslationTask(args, dictionary, dictionary).build_model(args)
    except ConfigError:
        raise
    except (ValueError, AssertionError) as error:  # fairseq's checks of incompatible model flags
        raise ConfigError(f"--arch {args.arch}: cannot build the model with these flags: {error}") from None


def model_from_flags(flags, vocab_size):
    """``build_translation_model`` from a list of command-line flags."""
    args = options.parse_args_and_arch(options.get_training_parser(), [NO_DATA, "--task", "translation", *flags])
    return build_translation_model(args, vocab_size)
