from fairseq_plugins.models import composable_transformer, composable_transformer_lm, weight_decay  # noqa: F401
from fairseq_plugins.models import image_classifiers  # noqa: F401
from fairseq_plugins.models import transformer_classifier  # noqa: F401
from fairseq_plugins.models import turnover_classifiers  # noqa: F401

weight_decay.install()  # per-parameter weight decay for every optimizer (models/weight_decay.py)
