"""Checkpoints and splits for the commands that evaluate trained models (influence, DIP, probes, ...).

- ``load_checkpoint(path, data)``: the model (eval mode), its saved config and its task, as
  fairseq-validate loads them; a missing or unreadable file is a one-line error naming it.
- ``checkpoint_task_name(path)``: the task a checkpoint was trained with.
- ``load_split(task, cfg, subset)``: one split of the task's data.
- ``batches_in_index_order(dataset, batch_size)``: collated batches, every instance once, in
  dataset-index order (nothing filtered, nothing shuffled), each with its ``id``.
- ``classifier_logits(model, net_input)``: every classifier of the package returns
  ``(logits, extra)`` (fairseq's sentence_prediction convention); the logits.
"""

import os

from fairseq_plugins.data.sentences import batches_in_index_order  # noqa: F401  (the commands' import of it)
from fairseq_plugins.errors import ConfigError


def read_checkpoint_state(path, flag="--path"):
    """The checkpoint's dict as fairseq reads it, or a one-line error naming ``path``."""
    from fairseq import checkpoint_utils

    if not os.path.isfile(path):
        raise ConfigError(f"{flag} {path}: no such checkpoint file")
    try:
        return checkpoint_utils.load_checkpoint_to_cpu(path)
    except ConfigError as error:  # compat's check of the file format
        raise ConfigError(f"{flag} {error}") from None


def checkpoint_task_name(path, flag="--path"):
    """The task a checkpoint was trained with (dataclass configs and legacy Namespaces alike)."""
    state = read_checkpoint_state(path, flag)
    cfg = state.get("cfg") or {}
    task = cfg.get("task") if hasattr(cfg, "get") else None
    if task is not None and task.get("_name"):
        return task["_name"]
    return getattr(state.get("args"), "task", None)


def load_checkpoint(path, data=None, overrides=None, flag="--path"):
    """``(model in eval mode, saved config, task)``; ``data`` replaces the data directory it was
    trained on, ``overrides`` any other saved option."""
    from fairseq import checkpoint_utils

    read_checkpoint_state(path, flag)  # one-line errors for missing and unreadable files
    overrides = dict(overrides or {})
    if data is not None:
        overrides["data"] = data
    try:
        models, cfg, task = checkpoint_utils.load_model_ensemble_and_task([path], arg_overrides=overrides)
    except FileNotFoundError as error:
        raise ConfigError(f"{flag} {path}: cannot set up its task: {error}") from None
    return models[0].eval(), cfg, task


def load_split(task, cfg, subset, flag="--valid-subset"):
    try:
        task.load_dataset(subset, combine=False, epoch=1, task_cfg=cfg.task)
    except FileNotFoundError as error:
        raise ConfigError(f"{flag} {subset}: {error}") from None
    return task.dataset(subset)


def classifier_logits(model, net_input):
    logits, _ = model(**net_input)
    return logits
