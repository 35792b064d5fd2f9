"""Shared by tests/test_nerf_*.py: the repository root on sys.path (recipes/ is not an installed
package) and a runner for ``python -m recipes.nerf``."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def run_nerf(*args, check=True):
    command = [sys.executable, "-m", "recipes.nerf", *map(str, args)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(command)} exited {result.returncode}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result
