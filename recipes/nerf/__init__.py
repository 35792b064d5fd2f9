"""Distilled Feature Fields (Kobayashi, Matsumoto & Sitzmann, NeurIPS 2022) on a CPU-friendly NeRF.

``fairseq-plugins-nerf --help`` (installed with the package), or ``python -m recipes.nerf --help``
from the repository root. Importing the package fills the
registries (registry.py) with the parts defined in its modules.
"""

import os
import sys

if "torch" not in sys.modules and "OMP_WAIT_POLICY" not in os.environ:
    # Idle OpenMP threads sleep instead of spinning, in this process: on 2 cores shared with other
    # jobs, 2 spinning threads trained 7-10x slower (bench/nerf_grid_read.py). OpenMP reads the
    # policy once, as torch loads it; it is then taken out again, so that the processes this one
    # starts keep their own default.
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    try:
        import torch  # noqa: F401
    finally:
        del os.environ["OMP_WAIT_POLICY"]

from . import data, edits, fields, queries, teachers  # noqa: E402, F401  (registers the parts)
