"""fairseq plugins: import this package (or pass its directory as ``--user-dir``) to
register its architectures, criterions and tasks in fairseq's registries."""

from fairseq_plugins import compat

compat.apply()  # before the registries: they import fairseq modules that the repairs patch

from fairseq_plugins import criterions, lr_schedulers, models, tasks  # noqa: E402,F401
