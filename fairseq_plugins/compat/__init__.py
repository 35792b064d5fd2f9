"""Every change this package makes to fairseq's behaviour: the list ``REPAIRS``, applied in order by ``apply()``.

Applied once, when the user dir is imported (fairseq imports ``--user-dir`` while pre-parsing
arguments, before it reads any checkpoint or builds any batch). Each repair is a function whose
docstring's first paragraph says what failed upstream and what changes; the README's
troubleshooting list names them in this order (``tests/test_compat.py`` checks it). Each is
narrow, acts only where upstream fails (with the user dir loaded, fairseq's own unit tests pass
as without it: ``tests/upstream/``), and has a regression test in ``tests/test_compat.py``,
``tests/test_compat_distributed.py`` or the test of the feature it enables.
"""

from fairseq_plugins.compat.batching import keep_last_batch, numpy2_shims
from fairseq_plugins.compat.checkpoints import allow_fairseq_checkpoint_globals, unreadable_checkpoints_name_the_file
from fairseq_plugins.compat.commands import one_line_errors_in_commands, validate_takes_the_checkpoints_task
from fairseq_plugins.compat.data_parallel import distributed_training_on_this_stack
from fairseq_plugins.compat.noise import quiet_deprecation_noise
from fairseq_plugins.compat.optimizers import (
    per_parameter_optimizer_settings,
    precision_flags_without_their_hardware_are_one_line,
)

REPAIRS = (
    quiet_deprecation_noise,
    allow_fairseq_checkpoint_globals,
    keep_last_batch,
    numpy2_shims,
    per_parameter_optimizer_settings,
    unreadable_checkpoints_name_the_file,
    precision_flags_without_their_hardware_are_one_line,
    distributed_training_on_this_stack,
    validate_takes_the_checkpoints_task,
    one_line_errors_in_commands,
)


def apply():
    for repair in REPAIRS:
        repair()
