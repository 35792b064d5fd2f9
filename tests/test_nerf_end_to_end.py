"""The recipe's small mode end to end through the CLI: make-scene -> train -> query (patch, click)
-> evaluate -> render and edits (delete, recolor, translate, extract), plus a bad query name."""

import json
import os
import subprocess

import pytest

from nerf_helpers import ROOT, run_nerf


@pytest.mark.slow
def test_small_recipe_trains_queries_edits_and_evaluates(tmp_path):
    work = tmp_path / "work"
    env = dict(os.environ, SMALL="1", WORK_DIR=str(work))
    result = subprocess.run(["bash", "recipes/nerf/run.sh"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "curve (iteration, training seconds, val PSNR)" in result.stdout
    run = work / "run-oracle"
    assert [point["iteration"] for point in json.loads((run / "curve.json").read_text())["curve"]] == [150, 300]

    scores = json.loads((run / "evaluate.json").read_text())
    assert scores["test_views"] == 3 and scores["test_psnr"] > 20
    for name, target in (("sphere-patch", "sphere"), ("box-click", "box")):
        query = scores["queries"][name]
        assert query["target"] == target and query["iou"] > 0.5
        # deleting the object brings the render closer to the scene rendered without it
        assert query["delete_psnr"] > query["unedited_vs_without_psnr"]
    figures = sorted(p.name for p in (work / "figures").iterdir())
    assert figures == sorted(
        ["query-sphere-patch-oracle.png", "query-box-click-oracle.png", "render-test.png", "evaluate-oracle.json"]
        + [f"edit-{op}.png" for op in ("delete", "recolor", "translate", "extract")]
    )
    assert len(list((work / "edit-translate").glob("frame_*.png"))) == 3
    assert len(list((work / "orbit").glob("frame_*.png"))) == 4

    missing = run_nerf("edit", "--run", run, "--query", "nope", "--out", tmp_path / "x", check=False)
    assert missing.returncode == 1 and "--query 'nope' is not saved" in missing.stderr and missing.stderr.count("\n") == 1
    outside = run_nerf("query", "--run", run, "--name", "x", "--click", 0, 99, 0, check=False)
    assert outside.returncode == 1 and "--click" in outside.stderr and outside.stderr.count("\n") == 1
