"""Build fairseq models from ordinary command-line flags, with no data on disk.

Used by the probes and counters (``fairseq-plugins-gradnorm``, ``fairseq-plugins-params``),
the benchmarks and the tests: a dictionary of dummy symbols stands in for the
binarized data, shared by source and target so ``--share-all-embeddings`` works.
Translation models (``--task translation``, fairseq's default) and language models
(``--task language_modeling``, or our ``monitored_language_modeling``) are built.
"""

import argparse

from omegaconf import OmegaConf

from fairseq import options
from fairseq.data import Dictionary
from fairseq.dataclass.utils import convert_namespace_to_omegaconf
from fairseq.tasks.language_modeling import LanguageModelingTask
from fairseq.tasks.translation import TranslationTask

from fairseq_plugins.errors import ConfigError

# fairseq's parser requires the task's positional data directory; nothing reads it.
NO_DATA = "(no data)"
TASKS = {
    "translation": lambda args, dictionary: TranslationTask(args, dictionary, dictionary),
    "language_modeling": lambda args, dictionary: LanguageModelingTask(args, dictionary, dictionary),
}
TASKS["monitored_language_modeling"] = TASKS["language_modeling"]


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
    if args.task not in TASKS:
        parser.error(f"--task {args.task}: models are built here for --task {' or '.join(TASKS)}")
    return args


def dummy_dictionary(size):
    """A fairseq Dictionary of ``size`` symbols: the 4 special ones and ``w0``, ``w1``, ..."""
    dictionary = Dictionary()
    for i in range(size - len(dictionary)):
        dictionary.add_symbol(f"w{i}")
    return dictionary


def with_model_defaults(args):
    """A copy of ``args`` holding every model option, the model config's defaults included (the
    parser leaves out those of dataclass-configured models until fairseq builds its config)."""
    model_cfg = convert_namespace_to_omegaconf(args).model
    args = argparse.Namespace(**vars(args))
    if not isinstance(model_cfg, argparse.Namespace):
        for name, value in OmegaConf.to_container(model_cfg, resolve=True).items():
            if not hasattr(args, name):
                setattr(args, name, value)
    return args


def build_model(args, vocab_size):
    """The model fairseq-train would build from ``args``, over a dummy dictionary of ``vocab_size``."""
    dictionary = dummy_dictionary(vocab_size)
    try:
        # As fairseq-train: dataclass-configured models (the LMs) get their config's defaults here.
        return TASKS[args.task](args, dictionary).build_model(convert_namespace_to_omegaconf(args).model)
    except ConfigError:
        raise
    except (ValueError, AssertionError) as error:  # fairseq's checks of incompatible model flags
        raise ConfigError(f"--arch {args.arch}: cannot build the model with these flags: {error}") from None


def model_from_flags(flags, vocab_size, task="translation"):
    """``build_model`` from a list of command-line flags."""
    args = options.parse_args_and_arch(options.get_training_parser(), [NO_DATA, "--task", task, *flags])
    return build_model(args, vocab_size)
