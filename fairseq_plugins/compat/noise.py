"""Warnings printed by every fairseq CLI call on this stack, none actionable by a user."""

import logging
import warnings

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
    r"`broadcast_buffers` is deprecated",
)


def quiet_deprecation_noise():
    """hydra/omegaconf/torch deprecation warnings and log lines that every fairseq CLI call printed are filtered."""
    # Logged on every call: tensorboardX only matters to speech tasks; hydra's job bookkeeping.
    logging.getLogger("fairseq.tasks.text_to_speech").setLevel(logging.WARNING)
    logging.getLogger("hydra").setLevel(logging.WARNING)
    for message in DEPRECATION_NOISE:
        warnings.filterwarnings("ignore", message=r"\s*" + message)
    # Deprecations raised inside these libraries, whatever their text.
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"(hydra|omegaconf|antlr4|pkg_resources)(\..*)?")
