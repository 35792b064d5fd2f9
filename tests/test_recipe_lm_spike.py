"""recipes/lm_spike: the small mode end to end on local text (slow), and prepare's input check."""

import csv
import os

import pytest

from fairseq_plugins.synthetic_translation import write_corpus
from recipe_helpers import error_line, run_recipe


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
