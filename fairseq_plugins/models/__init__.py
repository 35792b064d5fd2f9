from fairseq_plugins.models import composable_transformer  # noqa: F401
from fairseq_plugins.models import image_classifiers  # noqa: F401
from fairseq_plugins.models import transformer_classifier  # noqa: F401
from fairseq_plugins.models import turnover_classifiers  # noqa: F401
