"""Criterions (registered on import)."""
from fairseq_plugins.criterions import classification_cross_entropy  # noqa: F401
