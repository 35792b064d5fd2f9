"""Dataclass configs that are also the command line: each field declares its help and choices once."""

import argparse
from dataclasses import MISSING, field, fields


def option(default, help, choices=None, cli=True):
    return field(default=default, metadata={"help": help, "choices": choices, "cli": cli})


def add_arguments(parser, config_class, skip=()):
    """One ``--flag-name`` per field of ``config_class``; choices may be a registry table or a function
    returning names, read when the parser is built."""
    for item in fields(config_class):
        meta = item.metadata
        if not meta.get("cli", True) or item.name in skip:
            continue
        default = item.default if item.default is not MISSING else item.default_factory()
        kwargs = {"default": default, "help": f"{meta.get('help', '')} (default: {default})"}
        if isinstance(default, list):
            kwargs.update(nargs=len(default), type=type(default[0]), metavar=item.name.upper())
        else:
            kwargs["type"] = type(default)
        choices = meta.get("choices")
        if choices is not None:
            kwargs["choices"] = sorted(choices() if callable(choices) else choices)
        parser.add_argument("--" + item.name.replace("_", "-"), **kwargs)


def from_arguments(config_class, args):
    names = {item.name for item in fields(config_class)}
    return config_class(**{k: v for k, v in vars(args).items() if k in names})


class OneLineErrors(argparse.ArgumentParser):
    """argparse errors as one line (no usage block), like the rest of the recipe's errors."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")
