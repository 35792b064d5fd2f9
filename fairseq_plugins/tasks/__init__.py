"""Tasks (registered on import)."""
from fairseq_plugins.tasks import image_classification  # noqa: F401
from fairseq_plugins.tasks import length_controlled_translation  # noqa: F401
from fairseq_plugins.tasks import training_monitor  # noqa: F401
