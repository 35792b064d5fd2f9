"""recipes/dip in its small mode (sklearn digits, one seed, 2 epochs): every step, through the real CLIs."""

import json
import os
import subprocess
import sys

import pytest

RECIPE = os.path.join(os.path.dirname(__file__), "..", "recipes", "dip", "run.sh")


@pytest.mark.slow
def test_small_recipe_runs_every_method(tmp_path):
    env = dict(os.environ, SMALL="1", WORK_DIR=str(tmp_path / "work"),
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    result = subprocess.run(["bash", RECIPE], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((tmp_path / "work" / "results.json").read_text())
    assert set(results["baselines"]) == {"erm", "mixup0.2", "mixup1.0"}
    assert set(results["dip"]["samples"]) == {"1", "4"} and results["examples"] == 270
    assert (tmp_path / "work" / "accuracy_vs_s.png").stat().st_size > 1000
    assert "dip, S=4" in result.stdout
