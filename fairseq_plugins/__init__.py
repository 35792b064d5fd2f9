"""fairseq plugins: import this package (or pass its directory as ``--user-dir``) to
register its architectures, criterions and tasks in fairseq's registries."""

from fairseq_plugins import compat, errors

compat.apply()
errors.install_excepthook()

from fairseq_plugins import criterions, models, tasks  # noqa: E402  (registries need compat first)
