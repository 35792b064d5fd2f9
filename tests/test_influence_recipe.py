"""The influence recipe's small mode (sklearn digits, 10% labels flipped): every step of run.sh."""

import json

import pytest

from recipe_helpers import run_recipe


@pytest.mark.slow
def test_small_mode_ranks_flipped_labels_and_cleanses(tmp_path):
    result = run_recipe("influence/run.sh", env={"SMALL": "1", "WORK_DIR": str(tmp_path)})
    precision = json.loads((tmp_path / "results/precision.json").read_text())
    assert (precision["train"], precision["flipped"]) == (1257, 126)
    rows = precision["precision"]
    # Same bound as tests/test_influence_end_to_end.py (measured 0.73 at k = 126; random 0.10 +- 0.027).
    assert rows["turn-over dropout, self-influence"]["126"] > 0.4
    assert rows["random"]["126"] < 0.2
    assert any(name.startswith("TracInCP") for name in rows)
    assert (tmp_path / "results/precision.png").stat().st_size > 10_000
    accuracy = (tmp_path / "results/accuracy.tsv").read_text().split("\n")
    assert [line.split("\t")[0] for line in accuracy if line] == ["noisy.1", "harmful-removed.1", "random-removed.1"]
    assert all(50 < float(line.split("\t")[1]) <= 100 for line in accuracy if line)
    assert "| harmful-removed |" in result.stdout


def test_evaluate_rejects_an_unknown_step(tmp_path):
    result = run_recipe("influence/evaluate.sh", env={"SMALL": "1", "WORK_DIR": str(tmp_path)}, args=["plot"], check=False)
    assert result.returncode == 2
    assert result.stderr.strip() == "evaluate.sh: error: the first argument must be rank or accuracy, got 'plot'"
