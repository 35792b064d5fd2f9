"""Distilled Feature Fields (Kobayashi, Matsumoto & Sitzmann, NeurIPS 2022) on a CPU-friendly NeRF.

``fairseq-plugins-nerf --help`` (installed with the package), or ``python -m recipes.nerf --help``
from the repository root. Importing the package fills the
registries (registry.py) with the parts defined in its modules.
"""

from . import data, edits, fields, queries, teachers  # noqa: F401  (registers the parts)
