"""recipes/lm_spike: the small mode end to end on local text (slow), prepare's input check, and the
spike sweep (sweep.py): grid order, per-run reports, its stop rule and its errors."""

import csv
import json
import os
import pathlib
import subprocess
import sys

import pytest

from fairseq_plugins.synthetic_translation import write_corpus
from recipe_helpers import REPO, error_line, run_recipe


@pytest.fixture(scope="module")
def raw_text(tmp_path_factory):
    """{train,valid,test}.txt: one sentence per line, the toy corpus's target side."""
    corpus = write_corpus(str(tmp_path_factory.mktemp("lm-raw")), (("train", 1500), ("valid", 80), ("test", 80)))
    for split in ("train", "valid", "test"):
        os.rename(os.path.join(corpus, f"{split}.xx"), os.path.join(corpus, f"{split}.txt"))
    return corpus


@pytest.mark.slow
def test_small_mode_runs_every_step(raw_text, tmp_path):
    run_recipe("lm_spike/run.sh", env={"SMALL": "1", "RAW_DIR": raw_text, "WORK_DIR": str(tmp_path)})
    with open(tmp_path / "results.tsv") as file:
        rows = {row["run"]: row for row in csv.DictReader(file, delimiter="\t")}
    assert set(rows) == {"vanilla-lr1e-3", "scaled-lr1e-3", "layernorm-lr1e-3", "vanilla-lr1e-2"}
    for row in rows.values():
        assert row["status"] == "ok" and int(row["updates"]) == 30
        assert 1 < float(row["test_ppl"]) < 1000 and 1 < float(row["valid_ppl"]) < 1000
        assert float(row["max_gnorm"]) > 0
        # The table's count is the monitor's: one warning per spike in the run's own log.
        log = (tmp_path / "logs" / f"{row['run']}.log").read_text()
        assert int(row["spikes"]) == log.count("loss spike at update"), row
    assert (tmp_path / "curves.png").stat().st_size > 10_000
    # a second run skips the finished preparation steps
    again = run_recipe("lm_spike/prepare.sh", env={"SMALL": "1", "RAW_DIR": raw_text, "WORK_DIR": str(tmp_path)})
    assert "skip text" in again.stderr and "skip binarize" in again.stderr


def test_prepare_names_the_missing_file(tmp_path):
    (tmp_path / "train.txt").write_text("a b c\n")
    result = run_recipe("lm_spike/prepare.sh", env={"RAW_DIR": str(tmp_path), "WORK_DIR": str(tmp_path / "work")},
                        check=False)
    assert "lacks valid.txt" in error_line(result)


def test_train_rejects_an_unknown_treatment(tmp_path):
    result = run_recipe("lm_spike/train.sh", env={"WORK_DIR": str(tmp_path)}, args=["spiky"], check=False)
    assert "treatment must be one of vanilla scaled layernorm" in error_line(result)


def sweep(work_dir, *args, check=True):
    """recipes/lm_spike/sweep.py with this venv's tools on PATH."""
    env = {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
           "WORK_DIR": str(work_dir), "SMALL": "1"}
    result = subprocess.run([sys.executable, os.path.join(REPO, "recipes", "lm_spike", "sweep.py"), *map(str, args)],
                            env=env, capture_output=True, text=True)
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.mark.slow  # six 20-update trainings of a 1-layer model (~1.5 min on 2 cores)
def test_sweep_runs_the_grid_cheapest_first_and_reports_every_run(raw_text, tmp_path):
    run_recipe("lm_spike/prepare.sh", env={"SMALL": "1", "RAW_DIR": raw_text, "WORK_DIR": str(tmp_path), "CHARS": "1"})
    words = (pathlib.Path(raw_text) / "valid.txt").read_text().splitlines()[0].split()
    assert (tmp_path / "text" / "valid.txt").read_text().splitlines()[0].split() == list("_".join(words))
    result = sweep(tmp_path, "--models", "1x64,1x32", "--lrs", "1e-3", "--warmups", "2,5", "--max-update", 20,
                   "--max-tokens", 256, "--all")
    report = json.loads((tmp_path / "sweep" / "sweep.json").read_text())
    order = [(run["width"], run["warmup"], run["treatment"]) for run in report["runs"]]
    assert order == [(width, warmup, treatment) for width in (32, 64) for warmup in (5, 2)
                     for treatment in ("vanilla", "scaled", "layernorm")]
    for run in report["runs"]:
        name = f"{run['treatment']}-1x{run['width']}-w{run['warmup']}-lr0.001"
        log = (tmp_path / "sweep" / "logs" / f"{name}.log").read_text()
        # the run is the grid's setting, logged every update, its spikes the monitor's
        assert f"'decoder_embed_dim': {run['width']}," in log and f"'warmup_updates': {run['warmup']}," in log
        assert f"'embed_treatment': '{run['treatment']}'" in log
        assert run["updates"] == 20 and log.count("| train_inner |") == 20
        assert run["spikes"] == log.count("loss spike at update") == len(run["spike_updates"]) and not run["diverged"]
        assert run["largest_loss_ratio"] > 0 and run["gnorm_max_over_median_after_warmup"] >= 1
    assert not (tmp_path / "checkpoints").exists() or not any((tmp_path / "checkpoints").rglob("*.pt"))
    assert report["found"] is None and "no setting of the grid" in result.stdout
    assert (tmp_path / "sweep" / "curves.png").stat().st_size > 10_000
    # a rerun of the same budget reuses the finished runs' logs; another budget trains again
    logs = sorted((tmp_path / "sweep" / "logs").glob("*.log"))
    stamps = [log.stat().st_mtime_ns for log in logs]
    sweep(tmp_path, "--models", "1x64,1x32", "--lrs", "1e-3", "--warmups", "2,5", "--max-update", 20, "--max-tokens", 256, "--all")
    assert [log.stat().st_mtime_ns for log in logs] == stamps
    assert json.loads((tmp_path / "sweep" / "sweep.json").read_text())["runs"] == report["runs"]
    sweep(tmp_path, "--models", "1x32", "--lrs", "1e-3", "--warmups", "2", "--max-update", 21, "--max-tokens", 256)
    assert json.loads((tmp_path / "sweep" / "sweep.json").read_text())["runs"][0]["updates"] == 21


def test_sweep_loss_ratio_is_the_monitors_test():
    largest_loss_ratio = sweep_module().largest_loss_ratio
    losses = [4.0] * 30 + [6.0] + [4.0] * 5
    assert largest_loss_ratio(losses) == 1.5
    assert largest_loss_ratio([9.0] * 5 + [4.0] * 30) == 1.0  # the first 10 losses are history only
    assert largest_loss_ratio([4.0] * 200 + [4.4]) == pytest.approx(1.1)


def sweep_module():
    sys.path.insert(0, os.path.join(REPO, "recipes", "lm_spike"))
    try:
        import sweep as module
    finally:
        sys.path.pop(0)
    return module


def test_sweep_stops_at_the_first_setting_where_only_vanilla_spikes():
    qualifies = sweep_module().qualifies
    calm, spiky, diverged = ({"spikes": 0, "diverged": False}, {"spikes": 2, "diverged": False},
                             {"spikes": 0, "diverged": True})
    assert qualifies({"vanilla": spiky, "scaled": calm, "layernorm": calm})
    assert qualifies({"vanilla": diverged, "scaled": calm, "layernorm": calm})
    assert not qualifies({"vanilla": calm, "scaled": calm, "layernorm": calm})
    assert not qualifies({"vanilla": spiky, "scaled": spiky, "layernorm": calm})
    assert not qualifies({"vanilla": spiky, "scaled": calm, "layernorm": diverged})


@pytest.mark.parametrize("flags, message", [
    (["--models", "2by128"], "--models takes LAYERSxWIDTH entries such as 2x128 (got '2by128')"),
    (["--models", "2x100"], "--models 2x100: layers >= 1 and a width that is a multiple of 32"),
    (["--lrs", "1e-3,fast"], "--lrs takes comma-separated numbers (got '1e-3,fast')"),
])
def test_sweep_names_bad_grid_values(tmp_path, flags, message):
    result = sweep(tmp_path, *flags, check=False)
    assert result.returncode == 2 and result.stderr.strip().splitlines()[-1].endswith(message), result.stderr
