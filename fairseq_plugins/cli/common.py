"""What every console script of the package shares, so that the commands read as one family.

- ``command_parser(prog, doc)``: an argparse parser whose errors are one line (``prog: error: msg``)
  and whose description is the first paragraph of the command's docstring. Commands that take
  fairseq's own flags use fairseq's parser instead: ``dataless.model_flags_parser`` (gradnorm,
  params: a model from ``--arch`` flags), fairseq's validation parser (influence: task options as
  fairseq-validate takes them).
- Artifacts keep fairseq's names for them: ``--work-dir`` for a new directory of a whole
  experiment (quickstart, alone-quality, extrapolation), ``--out DIR`` for what a command builds
  (tickets' members, influence's arrays), ``--output FILE`` as fairseq's scripts (average, predict).
- ``add_user_dir`` / ``import_user_dir``: ``--user-dir DIR`` as fairseq's own commands take it.
  This package is always loaded; another directory is imported as fairseq would.
- Splits are named as fairseq names them: ``--valid-subset`` for a split that is scored,
  ``--gen-subset`` for one that is generated from or encoded.
- ``add_json_output`` / ``write_results``: ``--json`` prints the results as JSON to stdout instead of
  the table; ``--json FILE`` writes them to FILE (the table still prints); both may be given.
- ``setup_logging(quiet)``: fairseq's log format on stderr; ``quiet`` keeps warnings only (importing
  fairseq configures INFO, which would drown a table or JSON).
- ``seed_statistics(by_seed)``: one schema for a score over seeds.
"""

import argparse
import json
import logging
import statistics
import sys

from fairseq_plugins.errors import ConfigError

STDOUT = "-"


def command_parser(prog, doc):
    # without a usage line an argparse error is the one line `prog: error: msg`
    return argparse.ArgumentParser(prog=prog, description=doc.split("\n\n")[0], usage=argparse.SUPPRESS)


def add_user_dir(parser):
    parser.add_argument("--user-dir", metavar="DIR",
                        help="a fairseq --user-dir to import, as fairseq's commands take it (this package is always loaded)")


def import_user_dir(path):
    """Import ``--user-dir`` as fairseq's commands do (this package's own directory is already imported)."""
    if not path:
        return
    from fairseq import utils

    try:
        utils.import_user_module(argparse.Namespace(user_dir=path))
    except FileNotFoundError:
        raise ConfigError(f"--user-dir {path}: no such directory") from None


def add_json_output(parser, what="the results"):
    parser.add_argument("--json", nargs="?", const=STDOUT, action="append", metavar="FILE",
                        help=f"{what} as JSON: to stdout instead of the table, or with FILE written to FILE "
                             "(the table still prints); may be given twice")


def prints_json(args):
    """True when ``--json`` sends the JSON to stdout (progress logging then stays quiet)."""
    return STDOUT in (args.json or [])


def write_results(results, args, table):
    """The one output convention: JSON files for ``--json FILE``, then JSON or ``table(results)`` on stdout."""
    for path in args.json or []:
        if path != STDOUT:
            with open(path, "w") as file:
                json.dump(results, file, indent=1)
                file.write("\n")
    print(json.dumps(results, indent=1) if prints_json(args) else table(results))


def setup_logging(quiet):
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, stream=sys.stderr, force=True,
                        format="%(asctime)s | %(levelname)s | %(name)s | %(message)s")


def seed_statistics(by_seed, digits=None):
    """``{"mean", "std", "by_seed"}`` of ``{seed: score}``: the sample standard deviation (None for one seed);
    ``digits`` rounds the mean and std (the scores stay as given)."""
    values = list(by_seed.values())
    if not values:
        raise ValueError("seed_statistics: no scores")
    mean = statistics.mean(values)
    std = statistics.stdev(values) if len(values) > 1 else None
    if digits is not None:
        mean, std = round(mean, digits), None if std is None else round(std, digits)
    return {"mean": mean, "std": std, "by_seed": {str(seed): value for seed, value in by_seed.items()}}
