"""Helpers for the recipe tests: run a recipe script with a given environment."""

import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN_DIR = os.path.dirname(sys.executable)


def run_recipe(script, env=None, args=(), check=True):
    """``bash recipes/<script>`` from the repository root, with this venv first on PATH."""
    environment = {**os.environ, "PATH": BIN_DIR + os.pathsep + os.environ["PATH"], **(env or {})}
    result = subprocess.run(["bash", os.path.join(REPO, "recipes", script), *args], cwd=REPO, env=environment,
                            capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{script} exited {result.returncode}:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}")
    return result


def error_line(result):
    """The one error line of a failed recipe step (progress lines start with '[recipe]')."""
    assert result.returncode != 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("[")]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]
