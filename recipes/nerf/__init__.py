"""Distilled Feature Fields (Kobayashi, Matsumoto & Sitzmann, NeurIPS 2022) on a CPU-friendly NeRF.

``fairseq-plugins-nerf --help`` (installed with the package), or ``python -m recipes.nerf --help``
from the repository root. Importing the package fills the
registries (registry.py) with the parts defined in its modules.
"""

import os

# Before torch loads OpenMP: idle OpenMP threads sleep instead of spinning. With spinning threads, two
# threads on a 2-core machine that other jobs share trained 6x slower than one (120 iterations: 132 s
# against 23 s; 22 s with passive waiting).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from . import data, edits, fields, queries, teachers  # noqa: E402, F401  (registers the parts)
