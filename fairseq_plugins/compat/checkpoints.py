"""Loading fairseq checkpoints on torch >= 2.6."""

import argparse
import functools
import os

import numpy as np
import torch

def allow_fairseq_checkpoint_globals():
    """Checkpoints load in fairseq-train (resume), -generate, -interactive, -validate, -eval-lm and
    ensembles: torch >= 2.6 loads with ``weights_only=True`` and refused the ``argparse.Namespace``
    (and, with ``--eval-bleu``, numpy arrays and scalars) fairseq pickles into every checkpoint. Exactly
    those types are allow-listed; the weights-only safety stays on for everything else."""
    # Arrays and numpy scalars (a best BLEU) pickle as calls to these two
    # rebuilders plus their dtype classes. numpy 2 moved ``numpy.core`` to
    # ``numpy._core``; files written under numpy 1 name the old module, so each
    # rebuilder is allowed under both names.
    safe = [argparse.Namespace, np.ndarray, np.dtype]
    for rebuilder in (np._core.multiarray._reconstruct, np._core.multiarray.scalar):
        safe += [(rebuilder, f"{module}.multiarray.{rebuilder.__name__}") for module in ("numpy.core", "numpy._core")]
    safe += [getattr(np.dtypes, name) for name in dir(np.dtypes) if name.endswith("DType")]
    torch.serialization.add_safe_globals(safe)


def unreadable_checkpoints_name_the_file():
    """A corrupt or truncated checkpoint file stops fairseq's loaders with one line naming the file,
    instead of torch's unpickling traceback."""
    import zipfile

    from fairseq import checkpoint_utils

    from fairseq_plugins.errors import ConfigError

    load_checkpoint_to_cpu = checkpoint_utils.load_checkpoint_to_cpu
    if getattr(load_checkpoint_to_cpu, "names_unreadable_files", False):
        return

    @functools.wraps(load_checkpoint_to_cpu)
    def load_checkpoint_naming_the_file(path, *args, **kwargs):
        try:
            return load_checkpoint_to_cpu(path, *args, **kwargs)
        except Exception:
            # torch.save writes zip archives; anything else (garbage, a truncated copy) fails in
            # torch's unpickler with a message that names neither the file nor the problem.
            if os.path.isfile(path) and not zipfile.is_zipfile(path):
                raise ConfigError(f"{path}: not a checkpoint (not a file written by torch.save, or truncated)") from None
            raise

    load_checkpoint_naming_the_file.names_unreadable_files = True
    checkpoint_utils.load_checkpoint_to_cpu = load_checkpoint_naming_the_file
