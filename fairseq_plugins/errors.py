"""One-line errors for bad configuration.

A ``ConfigError`` names the flag (or file) at fault and what is allowed. When it
reaches the top of a fairseq CLI or one of our commands, the hook installed by
``install_excepthook`` prints ``<program>: error: <message>`` (the process
exits with status 1) instead of a traceback through fairseq's internals. So do a
missing file or data directory (``FileNotFoundError``) and fairseq's "Model file not
found" for ``--path``: the message names the path.
"""

import logging
import multiprocessing
import os
import sys


class ConfigError(ValueError):
    pass


def exit_without_teardown(status):
    """Exit now, skipping interpreter finalisation.

    An error raised mid-run leaves fairseq's data-buffer thread inside torch's C++ code, and
    finalising the interpreter under it aborts with a second line on stderr ("terminate called
    without an active exception"). Data-loader workers are stopped first, so that none of them
    reports its parent's disappearance.
    """
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    for worker in multiprocessing.active_children():
        worker.terminate()
        worker.join()
    os._exit(status)


def one_line_message(exc_type, exc):
    """The line to print for an error a user can fix from the command line, else None."""
    if issubclass(exc_type, ConfigError):
        return str(exc)
    if issubclass(exc_type, FileNotFoundError) and exc.filename:
        return f"no such file or directory: {exc.filename}"
    if issubclass(exc_type, OSError) and str(exc).startswith("Model file not found"):  # fairseq's --path check
        return f"--path: {str(exc)[0].lower()}{str(exc)[1:]}"
    return None


def install_excepthook():
    previous_hook = sys.excepthook
    if getattr(previous_hook, "prints_config_errors", False):
        return

    def print_config_errors(exc_type, exc, tb):
        message = one_line_message(exc_type, exc)
        if message is not None:
            print(f"{os.path.basename(sys.argv[0])}: error: {message}", file=sys.stderr)
            exit_without_teardown(1)
        else:
            previous_hook(exc_type, exc, tb)

    print_config_errors.prints_config_errors = True
    sys.excepthook = print_config_errors
