"""make-scene -> train -> query (patch, click) -> edit -> render -> evaluate, through the CLI."""

import json

import pytest
import torch

from nerf_helpers import run_nerf
from recipes.nerf.data import BlenderScene


@pytest.mark.slow
def test_train_query_edit_evaluate(tmp_path):
    scene, run = tmp_path / "scene", tmp_path / "run"
    run_nerf("make-scene", "--out", scene, "--resolution", 32, "--train-views", 30, "--val-views", 2, "--test-views", 3)
    trained = run_nerf(
        "train", "--scene", scene, "--out", run, "--iterations", 300, "--coarse-resolution", 24, "--resolution", 48,
        "--feature-resolution", 24, "--batch-rays", 1024, "--feature-rays", 512, "--eval-every", 150, "--occupancy-from", 50,
    )
    assert "curve (iteration, training seconds, val PSNR)" in trained.stdout
    curve = json.loads((run / "curve.json").read_text())["curve"]
    assert [point["iteration"] for point in curve] == [150, 300]

    # the patch: the sphere's pixels in training view 0; the click: a pixel of the box in view 1
    labels = BlenderScene(str(scene)).load("train").labels
    ys, xs = torch.nonzero(labels[0] == 2, as_tuple=True)
    box = [int(xs.float().quantile(0.3)), int(ys.float().quantile(0.3)), int(xs.float().quantile(0.7)) + 1, int(ys.float().quantile(0.7)) + 1]
    run_nerf("query", "--run", run, "--name", "sphere", "--patch", 0, *box)
    ys, xs = torch.nonzero(labels[1] == 3, as_tuple=True)
    middle = len(ys) // 2
    clicked = run_nerf("query", "--run", run, "--name", "box", "--click", 1, int(xs[middle]), int(ys[middle]))
    assert "label 3 (box)" in clicked.stdout
    assert (run / "queries" / "sphere.png").is_file()

    for op, extra in (("delete", []), ("recolor", ["--colour", 0, 0, 1]), ("translate", ["--offset", 0, 0.3, 0])):
        run_nerf("edit", "--run", run, "--query", "sphere", "--op", op, "--out", tmp_path / op, *extra)
        assert len(list((tmp_path / op).glob("frame_*.png"))) == 3 and (tmp_path / op / "sheet.png").is_file()
    run_nerf("render", "--run", run, "--out", tmp_path / "orbit", "--frames", 4)
    assert len(list((tmp_path / "orbit").glob("frame_*.png"))) == 4

    result = json.loads(run_nerf("evaluate", "--run", run, "--json").stdout)
    assert result["test_views"] == 3 and result["test_psnr"] > 20
    for name, target in (("sphere", "sphere"), ("box", "box")):
        scores = result["queries"][name]
        assert scores["target"] == target and scores["iou"] > 0.5
        # deleting the object brings the render closer to the scene rendered without it
        assert scores["delete_psnr"] > scores["unedited_vs_without_psnr"]

    missing = run_nerf("edit", "--run", run, "--query", "nope", "--out", tmp_path / "x", check=False)
    assert missing.returncode == 1 and "--query 'nope' is not saved" in missing.stderr and missing.stderr.count("\n") == 1
