"""fairseq's command-line programs: one-line errors, and fairseq-validate without ``--task``."""

import os
import sys

def one_line_errors_in_commands():
    """In a command-line program (fairseq's ``fairseq-*`` CLIs and ours), a ``ConfigError`` prints one
    line instead of a traceback (``errors.py``); a Python session that imports the package keeps its
    own exception hook."""
    from fairseq_plugins import errors

    if os.path.basename(sys.argv[0]).startswith("fairseq-"):
        errors.install_excepthook()


def validate_takes_the_checkpoints_task():
    """``fairseq-validate DATA --path CKPT`` without ``--task`` takes the checkpoint's task (fairseq's
    parser ended in ``KeyError: None``: fairseq-validate has no default task)."""
    from fairseq_plugins.compat.validate_task import use_the_checkpoints_task

    use_the_checkpoints_task()
