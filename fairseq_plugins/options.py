"""Choice options declared once.

A choice option is a fairseq dataclass field whose allowed values live in its metadata
(``choice_field``); the help text and the one-line error of ``check_choices`` both read them
from there. fairseq's parser ignores the ``choices`` key, so a bad value is not rejected by
argparse (whose message would be buried under fairseq's 170-line usage text) but at model,
task or criterion build time, in one line naming the flag.
"""

import dataclasses

from fairseq_plugins.errors import ConfigError


def one_of(choices):
    return ", ".join(choices)


def choice_field(default, choices, help):
    """A dataclass field taking one of ``choices`` (a tuple of strings)."""
    if default is not None and default not in choices:
        raise ValueError(f"default {default!r} is not among the choices {choices}")
    return dataclasses.field(
        default=default, metadata={"help": f"{help}; one of {one_of(choices)}", "choices": tuple(choices)}
    )


def choices_of(dataclass_type):
    """``{field name: allowed values}`` of the choice fields of ``dataclass_type``."""
    return {f.name: f.metadata["choices"] for f in dataclasses.fields(dataclass_type) if "choices" in f.metadata}


def flag(name):
    return "--" + name.replace("_", "-")


def check_choices(cfg, dataclass_type, names=None):
    """Raise a one-line ConfigError for the first choice field of ``dataclass_type`` whose value in
    ``cfg`` (a dataclass, an omegaconf config or an ``argparse.Namespace``) is not allowed.
    ``names``: check only these fields (e.g. the stacks a model has)."""
    for name, allowed in choices_of(dataclass_type).items():
        if names is not None and name not in names:
            continue
        value = getattr(cfg, name)
        if value is not None and value not in allowed:
            raise ConfigError(f"{flag(name)} must be one of {one_of(allowed)} (got {value!r})")


def set_defaults(args, **defaults):
    """What an architecture function does: give each option the user left unset (absent, or None as
    fairseq's own flags default) its value; options the user gave stay."""
    for name, value in defaults.items():
        if getattr(args, name, None) is None:
            setattr(args, name, value)


def dataclass_defaults(args, config_class):
    """Give ``args`` the default of every field of ``config_class`` it lacks. fairseq's Namespace
    path (``options.parse_args_and_arch`` + ``task.build_model(args)``, used by scripts and hub-style
    loading) leaves unset model options absent, where fairseq-train's dataclass path fills them."""
    for field in dataclasses.fields(config_class):
        if not hasattr(args, field.name) and field.default is not dataclasses.MISSING:
            setattr(args, field.name, field.default)
