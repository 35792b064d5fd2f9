"""Tasks (registered on import)."""
from fairseq_plugins.tasks import image_classification  # noqa: F401
