from fairseq_plugins.models import composable_transformer  # noqa: F401
