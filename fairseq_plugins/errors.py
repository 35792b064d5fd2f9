"""One-line errors for bad configuration.

A ``ConfigError`` names the flag (or file) at fault and what is allowed. When it
reaches the top of a fairseq CLI or one of our commands, the hook installed by
``install_excepthook`` prints ``<program>: error: <message>`` (the process
exits with status 1) instead of a traceback through fairseq's internals.
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


def install_excepthook():
    previous_hook = sys.excepthook
    if getattr(previous_hook, "prints_config_errors", False):
        return

    def print_config_errors(exc_type, exc, tb):
        if issubclass(exc_type, ConfigError):
            print(f"{os.path.basename(sys.argv[0])}: error: {exc}", file=sys.stderr)
            exit_without_teardown(1)
        else:
            previous_hook(exc_type, exc, tb)

    print_config_errors.prints_config_errors = True
    sys.excepthook = print_config_errors
