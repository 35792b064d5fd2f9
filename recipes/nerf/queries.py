"""Queries: a vector in the distilled feature space, from a teacher feature map or a text embedding.

``patch``: the mean teacher feature over a box of a training view. ``click``: the teacher feature at
one pixel of a training view. ``text``: the teacher's embedding of a class name (the ImageNet
classifier row for EfficientNet-Lite0), projected like the features but not centred. Each query
also reports which object it was meant to hit where the scene has labels (the majority label of the
patch, the label of the clicked pixel), so evaluate can score the selection.
"""

from .registry import ConfigError, register_query


class Query:
    """``flag`` and ``metavar`` describe the query's command-line option; ``vector(context)`` makes it."""

    target_label = None


def _check_view(view, context, flag):
    if not 0 <= view < context.num_views:
        raise ConfigError(f"{flag}: view {view} is not a training view (0-{context.num_views - 1})")


def _check_pixel(x, y, context, flag):
    if not (0 <= x < context.width and 0 <= y < context.height):
        raise ConfigError(f"{flag}: pixel ({x}, {y}) is outside the {context.width}x{context.height} training images")


@register_query("patch")
class PatchQuery(Query):
    flag, metavar = "--patch", ("VIEW", "X0", "Y0", "X1", "Y1")

    def __init__(self, view, x0, y0, x1, y1):
        self.view, self.box = int(view), [int(x0), int(y0), int(x1), int(y1)]

    def vector(self, context):
        x0, y0, x1, y1 = self.box
        _check_view(self.view, context, self.flag)
        _check_pixel(x0, y0, context, self.flag)
        _check_pixel(x1 - 1, y1 - 1, context, self.flag)
        if x1 <= x0 or y1 <= y0:
            raise ConfigError(f"--patch: the box needs X0 < X1 and Y0 < Y1, got {self.box}")
        features = context.view_features(self.view)[y0:y1, x0:x1]
        if context.labels is not None:
            self.target_label = int(context.labels[self.view, y0:y1, x0:x1].flatten().mode().values)
        return features.reshape(-1, features.shape[-1]).mean(0)


@register_query("click")
class ClickQuery(Query):
    flag, metavar = "--click", ("VIEW", "X", "Y")

    def __init__(self, view, x, y):
        self.view, self.x, self.y = int(view), int(x), int(y)

    def vector(self, context):
        _check_view(self.view, context, self.flag)
        _check_pixel(self.x, self.y, context, self.flag)
        if context.labels is not None:
            self.target_label = int(context.labels[self.view, self.y, self.x])
        return context.view_features(self.view)[self.y, self.x]


@register_query("text")
class TextQuery(Query):
    flag, metavar = "--text", ("NAME",)

    def __init__(self, name):
        self.name = name

    def vector(self, context):
        return context.project_direction(context.teacher.text_embedding(self.name))
