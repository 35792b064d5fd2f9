"""Criterions (registered on import)."""
from fairseq_plugins.criterions import classification_cross_entropy  # noqa: F401
from fairseq_plugins.criterions import dip_cross_entropy, mixup_cross_entropy  # noqa: F401
from fairseq_plugins.criterions import turnover  # noqa: F401
