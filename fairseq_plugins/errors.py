"""One-line errors for bad configuration.

A ``ConfigError`` names the flag (or file) at fault and what is allowed. When it
reaches the top of a fairseq CLI or one of our commands, the hook installed by
``install_excepthook`` prints ``<program>: error: <message>`` (the process
exits with status 1) instead of a traceback through fairseq's internals.
"""

import logging
import os
import sys


class ConfigError(ValueError):
    pass


def install_excepthook():
    previous_hook = sys.excepthook
    if getattr(previous_hook, "prints_config_errors", False):
        return

    def print_config_errors(exc_type, exc, tb):
        if issubclass(exc_type, ConfigError):
            print(f"{os.path.basename(sys.argv[0])}: error: {exc}", file=sys.stderr)
            # Exit without interpreter finalisation: an error raised mid-training leaves fairseq's
            # data-buffer thread alive, and tearing it down aborts with a second C++ line on stderr.
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(1)
        else:
            previous_hook(exc_type, exc, tb)

    print_config_errors.prints_config_errors = True
    sys.excepthook = print_config_errors
