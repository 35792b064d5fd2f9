"""``fairseq-validate DATA --path CKPT`` without ``--task``: the checkpoint's task.

fairseq's parser looks the task up as ``TASK_REGISTRY[args.task]`` before it parses the rest, and
fairseq-validate has no default task, so a missing ``--task`` ends in ``KeyError: None``. The
entry ``TASK_REGISTRY[None]`` installed here is looked up instead: it reads the task of the first
``--path`` checkpoint, makes it the parser's default and adds that task's options. Without
``--path``, or with a checkpoint whose task is not registered, it is a one-line error saying to
pass ``--task``.
"""

import argparse

from fairseq_plugins.errors import ConfigError


class TaskOfTheCheckpoint:
    """Stands in the task registry under ``None`` (no ``--task`` given)."""

    @staticmethod
    def add_args(parser):
        from fairseq.tasks import TASK_REGISTRY

        from fairseq_plugins.cli.checkpoints import checkpoint_task_name

        path_parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
        path_parser.add_argument("--path")
        path = path_parser.parse_known_args()[0].path
        if not path:
            raise ConfigError("--task: give the task of the data (e.g. --task translation)")
        name = checkpoint_task_name(path.split(":")[0])
        if name not in TASK_REGISTRY:
            raise ConfigError(f"--task: {path} was trained with task {name!r}, which is not registered; pass --task "
                              "and the --user-dir that defines it")
        parser.set_defaults(task=name)
        TASK_REGISTRY[name].add_args(parser)


def use_the_checkpoints_task():
    from fairseq.tasks import TASK_REGISTRY

    TASK_REGISTRY.setdefault(None, TaskOfTheCheckpoint)
