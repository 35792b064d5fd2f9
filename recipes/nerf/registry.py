"""Name -> class tables, one per kind of part (fields, teachers, datasets, queries, edits).

Each kind gets a ``register_<kind>(name)`` class decorator and a ``<KIND>`` dict, as fairseq's
``register_model``; the CLI's ``choices`` come from these tables, so a new part is one decorated
class in one module.
"""


class ConfigError(ValueError):
    """A bad flag or file: ``fairseq-plugins-nerf`` prints it as one line ``error: <message>``."""


def make_registry(kind):
    table = {}

    def register(name):
        def add(cls):
            if name in table:
                raise ValueError(f"{kind} {name!r} is registered twice ({table[name].__name__} and {cls.__name__})")
            cls.registered_name = name
            table[name] = cls
            return cls

        return add

    return table, register


def lookup(table, name, flag):
    if name not in table:
        raise ConfigError(f"{flag} {name!r} is not one of: {', '.join(sorted(table))}")
    return table[name]


FIELDS, register_field = make_registry("field")
TEACHERS, register_teacher = make_registry("teacher")
DATASETS, register_dataset = make_registry("dataset")
QUERIES, register_query = make_registry("query")
EDITS, register_edit = make_registry("edit")
