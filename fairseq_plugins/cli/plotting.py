"""One PNG figure for the probes' ``--plot`` options (matplotlib, imported only when asked)."""

import importlib.util
import io
import os


def save_png(path, draw, figsize=(6, 4), panels=1):
    """Call ``draw(axes)`` on a new figure (``axes``: one, or a sequence of ``panels`` side by side)
    and write it to ``path``.

    The figure is rendered in memory first, so a failure never leaves a partial file.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(1, panels, figsize=figsize)
    draw(axes)
    figure.tight_layout()
    png = io.BytesIO()
    figure.savefig(png, format="png")
    pyplot.close(figure)
    with open(path, "wb") as file:
        file.write(png.getvalue())


def check_plot_argument(parser, path):
    """Reject a ``--plot`` value before any work is done: one argparse error line each."""
    if path is None:
        return
    if os.path.isdir(path):
        parser.error(f"--plot {path} is a directory; name a .png file")
    if not path.lower().endswith(".png"):
        parser.error(f"--plot {path}: the file name must end in .png")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        parser.error(f"--plot {path}: directory {directory} does not exist")
    if importlib.util.find_spec("matplotlib") is None:
        parser.error("--plot needs matplotlib: pip install matplotlib")
