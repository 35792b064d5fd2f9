"""Every change this package makes to fairseq's behaviour, applied in one place: ``apply()``.

Applied once, when the user dir is imported (fairseq imports ``--user-dir`` while
pre-parsing arguments, before it reads any checkpoint or builds any batch). Each
repair is narrow, named after what it repairs, and covered by a regression test in
``tests/test_compat.py`` (or the test of the feature it enables).

- ``allow_fairseq_checkpoint_globals``: torch >= 2.6 loads with ``weights_only=True``
  and refuses the ``argparse.Namespace`` (and, with ``--eval-bleu``, numpy arrays)
  that fairseq pickles into every checkpoint. We allow-list exactly those types
  instead of turning the weights-only safety off for every load.
- ``keep_last_batch``: fairseq-fixed drops the last batch when its size is not a
  multiple of ``--required-batch-size-multiple`` (default 8), so generation and
  validation silently skipped up to 7 sentences. Upstream fairseq keeps it; so do we.
- ``numpy2_shims``: ``np.compat`` (removed in numpy 2) and
  ``np.percentile(interpolation=)`` (removed in numpy 2.4) used by LM
  ``--sample-break-mode eos`` and ``--num-batch-buckets``.
- ``quiet_deprecation_noise``: the hydra/omegaconf/torch deprecation warnings
  printed by every fairseq CLI call.
- ``per_parameter_optimizer_settings``: every optimizer honours the per-parameter
  ``optim_overrides`` that fairseq's ``composite`` optimizer alone reads
  (``optimizer_groups.py``), so a model can keep parameters out of weight decay.
- ``unreadable_checkpoints_name_the_file``: a corrupt checkpoint file stops fairseq's
  loaders with one line naming the file, instead of torch's unpickling traceback.
- ``one_line_errors_in_commands``: in a command-line program (fairseq's ``fairseq-*``
  CLIs and ours), a ``ConfigError`` prints one line instead of a traceback
  (``errors.py``); a Python session that imports the package keeps its own hook.
"""

import argparse
import functools
import logging
import os
import sys
import types
import warnings

import numpy as np
import torch

# Warnings printed by every fairseq CLI call on this stack, none actionable by a
# user: hydra's API deprecations (fairseq composes its config with the old API),
# torch deprecations of calls inside fairseq, and pin_memory without a GPU.
DEPRECATION_NOISE = (
    r"hydra\.experimental\.\w+\(\) is no longer experimental",
    r"The version_base parameter is not specified",
    r"In '.*': Usage of deprecated keyword in package header",
    r"'config' is validated against ConfigStore schema",
    r"The strict flag in the compose API is deprecated",
    r".*torch\.jit\.\w+.* is deprecated",
    r".*`torch\.nn\.utils\.weight_norm` is deprecated",
    r".*torch\.cuda\.amp\..* is deprecated",
    r"'pin_memory' argument is set as true but no accelerator is found",
    r"pkg_resources is deprecated",
    r"Support for mismatched key_padding_mask and attn_mask is deprecated",
)


def quiet_deprecation_noise():
    # Logged on every call: tensorboardX only matters to speech tasks; hydra's job bookkeeping.
    logging.getLogger("fairseq.tasks.text_to_speech").setLevel(logging.WARNING)
    logging.getLogger("hydra").setLevel(logging.WARNING)
    for message in DEPRECATION_NOISE:
        warnings.filterwarnings("ignore", message=r"\s*" + message)
    # Deprecations raised inside these libraries, whatever their text.
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"(hydra|omegaconf|antlr4|pkg_resources)(\..*)?")


def allow_fairseq_checkpoint_globals():
    """Allow-list the non-tensor types fairseq stores in its checkpoints."""
    # Arrays and numpy scalars (a best BLEU) pickle as calls to these two
    # rebuilders plus their dtype classes. numpy 2 moved ``numpy.core`` to
    # ``numpy._core``; files written under numpy 1 name the old module, so each
    # rebuilder is allowed under both names.
    safe = [argparse.Namespace, np.ndarray, np.dtype]
    for rebuilder in (np._core.multiarray._reconstruct, np._core.multiarray.scalar):
        safe += [(rebuilder, f"{module}.multiarray.{rebuilder.__name__}") for module in ("numpy.core", "numpy._core")]
    safe += [getattr(np.dtypes, name) for name in dir(np.dtypes) if name.endswith("DType")]
    torch.serialization.add_safe_globals(safe)


def keep_last_batch():
    from fairseq.data import data_utils

    batch_by_size = data_utils.batch_by_size
    if getattr(batch_by_size, "keeps_last_batch", False):
        return

    @functools.wraps(batch_by_size)
    def batch_by_size_keeping_last(indices, *args, **kwargs):
        if not isinstance(indices, np.ndarray):
            indices = np.fromiter(indices, dtype=np.int64, count=-1)
        batches = batch_by_size(indices, *args, **kwargs)
        # Batches are consecutive slices of ``indices``; anything past the last
        # one is the tail fairseq-fixed discarded.
        covered = sum(len(batch) for batch in batches)
        if kwargs.get("fixed_shapes") is None and covered < len(indices):
            batches.append(indices[covered:])
        return batches

    batch_by_size_keeping_last.keeps_last_batch = True
    data_utils.batch_by_size = batch_by_size_keeping_last


def get_buckets(sizes, num_buckets):
    """fairseq's ``data_utils.get_buckets`` with numpy >= 1.22's ``method=`` keyword."""
    return np.unique(
        np.percentile(sizes, np.linspace(0, 100, num_buckets + 1), method="lower")[1:]
    )


def numpy2_shims():
    if "compat" not in vars(np):
        # fairseq only uses ``np.compat.long`` (``int`` on Python 3).
        np.compat = types.SimpleNamespace(long=int)
    from fairseq.data import bucket_pad_length_dataset, data_utils

    for module in (data_utils, bucket_pad_length_dataset):
        module.get_buckets = get_buckets
    audio = sys.modules.get("fairseq.data.audio.raw_audio_dataset")
    if audio is not None:
        audio.get_buckets = get_buckets


def per_parameter_optimizer_settings():
    from fairseq import optim
    from fairseq.optim.fp16_optimizer import FP16Optimizer

    from fairseq_plugins.errors import ConfigError
    from fairseq_plugins.optimizer_groups import optimizer_overrides, param_groups

    if getattr(optim.build_optimizer, "builds_param_groups", False):
        return
    build_optimizer = optim.build_optimizer
    build_fp16_optimizer = FP16Optimizer.build_optimizer.__func__

    def build_optimizer_with_groups(cfg, params, *args, **kwargs):
        params = list(params)
        if params and not isinstance(params[0], dict):
            groups = param_groups(p for p in params if p.requires_grad)
            if groups is not None:
                return optim._build_optimizer(cfg, groups, *args, **kwargs)
        return build_optimizer(cfg, params, *args, **kwargs)

    def build_fp16_optimizer_checked(cls, cfg, params, **kwargs):
        params = list(params)
        flatten = not getattr(cfg.common, "fp16_no_flatten_grads", False) and not getattr(cfg.common, "bf16", False)
        if flatten and any(optimizer_overrides(p) for p in params):
            raise ConfigError("--no-weight-decay-embeddings with --fp16 needs --fp16-no-flatten-grads "
                              "(flat fp32 gradients are one parameter group)")
        return build_fp16_optimizer(cls, cfg, params, **kwargs)

    build_optimizer_with_groups.__wrapped__ = build_optimizer
    build_optimizer_with_groups.builds_param_groups = True
    optim.build_optimizer = build_optimizer_with_groups
    FP16Optimizer.build_optimizer = classmethod(build_fp16_optimizer_checked)


def unreadable_checkpoints_name_the_file():
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


def one_line_errors_in_commands():
    from fairseq_plugins import errors

    if os.path.basename(sys.argv[0]).startswith("fairseq-"):
        errors.install_excepthook()


def apply():
    quiet_deprecation_noise()
    allow_fairseq_checkpoint_globals()
    keep_last_batch()
    numpy2_shims()
    per_parameter_optimizer_settings()
    unreadable_checkpoints_name_the_file()
    one_line_errors_in_commands()
