"""Options whose allowed values are declared once, in the dataclass field.

A choice option (``choice_field``) lists its values, a numeric option (``bounded_field``) its
range (``">= 1"``, ``"> 0"``, ``"[0, 1)"``, ...) in the field's metadata; the help text and the
one-line error of ``check_options`` both read them from there, in one phrasing
(``--flag must be ... (got x)``). fairseq's parser ignores these keys, so a bad value is not
rejected by argparse (whose message would be buried under fairseq's 170-line usage text) but at
model, task or criterion build time, in one line naming the flag.

A console script's own numeric flag takes the same bounds as its argparse ``type=``:
``bounded(int, ">= 1")``, so that argparse's one-line error reads
``prog: error: argument --flag: must be >= 1 (got 0)``.
"""

import argparse
import dataclasses
import operator
import re

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


COMPARISONS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}
NUMBER = r"-?[\d.]+(?:e-?\d+)?"


def within(value, bounds):
    """Whether ``value`` lies within ``bounds``: a comparison (``">= 1"``) or an interval (``"(0, 1]"``)."""
    comparison = re.fullmatch(rf"(>=|>|<=|<) ({NUMBER})", bounds)
    if comparison:
        return COMPARISONS[comparison[1]](value, float(comparison[2]))
    interval = re.fullmatch(rf"([\[(])({NUMBER}), ({NUMBER})([\])])", bounds)
    if not interval:
        raise ValueError(f"bounds {bounds!r}: write a comparison ('>= 1') or an interval ('[0, 1)')")
    low, high = float(interval[2]), float(interval[3])
    above = value >= low if interval[1] == "[" else value > low
    below = value <= high if interval[4] == "]" else value < high
    return above and below


def phrase(bounds):
    return bounds if bounds[0] in "<>" else f"in {bounds}"


def outside(value, bounds):
    """What is wrong with ``value`` (``"must be >= 1 (got 0)"``), or None when it lies within ``bounds``."""
    return None if within(value, bounds) else f"must be {phrase(bounds)} (got {value!r})"


NUMBER_NAMES = {int: "an integer", float: "a number"}


def bounded(number_type, bounds):
    """An argparse ``type=`` for a flag taking an ``int`` or ``float`` within ``bounds`` (see ``within``);
    a value outside them, or not a number, is argparse's one-line error naming the flag."""
    within(0, bounds)  # a malformed bounds string fails when the parser is built, not when a user errs

    def convert(text):
        try:
            value = number_type(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"must be {NUMBER_NAMES[number_type]} {phrase(bounds)} (got {text!r})") from None
        problem = outside(value, bounds)
        if problem:
            raise argparse.ArgumentTypeError(problem)
        return value

    return convert


def bounded_field(default, bounds, help):
    """A numeric dataclass field whose value must lie within ``bounds`` (see ``within``)."""
    if default is not None and not within(default, bounds):
        raise ValueError(f"default {default!r} is not {phrase(bounds)}")
    return dataclasses.field(default=default, metadata={"help": f"{help} ({phrase(bounds)})", "bounds": bounds})


def choices_of(dataclass_type):
    """``{field name: allowed values}`` of the choice fields of ``dataclass_type``."""
    return {f.name: f.metadata["choices"] for f in dataclasses.fields(dataclass_type) if "choices" in f.metadata}


def flag(name):
    return "--" + name.replace("_", "-")


def check_options(cfg, dataclass_type, names=None):
    """Raise a one-line ConfigError for the first choice or bounded field of ``dataclass_type`` whose
    value in ``cfg`` (a dataclass, an omegaconf config or an ``argparse.Namespace``) is not allowed.
    ``names``: check only these fields (e.g. the stacks a model has)."""
    for field in dataclasses.fields(dataclass_type):
        if names is not None and field.name not in names:
            continue
        value = getattr(cfg, field.name, None)
        if value is None:
            continue
        if "choices" in field.metadata and value not in field.metadata["choices"]:
            raise ConfigError(f"{flag(field.name)} must be one of {one_of(field.metadata['choices'])} (got {value!r})")
        problem = outside(value, field.metadata["bounds"]) if "bounds" in field.metadata else None
        if problem:
            raise ConfigError(f"{flag(field.name)} {problem}")


def set_defaults(args, **defaults):
    """What an architecture function does: give each option the user left unset (absent, or None as
    fairseq's own flags default) its value; options the user gave stay."""
    for name, value in defaults.items():
        if getattr(args, name, None) is None:
            setattr(args, name, value)


def dataclass_defaults(args, config_class):
    """Give ``args`` the default of every field of ``config_class`` it lacks. fairseq's Namespace
    path (``options.parse_args_and_arch`` + ``task.build_model(args)``, used by scripts and hub-style
    loading) leaves unset model options absent, where fairseq-train's dataclass path fills them.
    An interpolation (``"${common.seed}"``) is not a value: fairseq's own config resolves it."""
    for field in dataclasses.fields(config_class):
        default = field.default
        interpolation = isinstance(default, str) and default.startswith("${")
        if not hasattr(args, field.name) and default is not dataclasses.MISSING and not interpolation:
            setattr(args, field.name, default)


def copied_fields(config_class, keep=lambda name: True):
    """The fields of ``config_class`` (those whose name ``keep`` accepts) as ``make_dataclass``
    takes them, to declare them again in a config of another lineage."""
    return [(f.name, f.type, dataclasses.field(default=f.default, metadata=f.metadata))
            for f in dataclasses.fields(config_class) if keep(f.name)]


def register_preset(model_name, name, summary, *architectures, **defaults):
    """Register architecture ``name`` of ``model_name``: ``defaults`` for the options the user did not
    give, then each of ``architectures`` (functions filling the rest, e.g. fairseq's stock dims)."""
    from fairseq.models import register_model_architecture

    def preset(args):
        set_defaults(args, **defaults)
        for architecture in architectures:
            architecture(args)

    preset.__name__ = name
    preset.__doc__ = f"{summary}; defaults {defaults}, then {', '.join(a.__name__ for a in architectures)}"
    register_model_architecture(model_name, name)(preset)
