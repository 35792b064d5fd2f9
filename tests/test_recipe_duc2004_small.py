"""recipes/duc2004 small mode, as CI runs it: run.sh chains prepare (real package descriptions of
this machine as article -> headline pairs), train (ALONE binary with an LDPE decoder at 2+2 layers,
d=128, 200 updates), average, generate through fairseq-generate's length_controlled_translation
task with a desired length of 75 characters, truncate at 75 bytes and score ROUGE with the
official script."""

import json

import pytest

from recipe_helpers import run_recipe


@pytest.mark.slow
def test_small_mode_runs_every_step(tmp_path):
    env = {"SMALL": "1", "WORK_DIR": str(tmp_path)}
    result = run_recipe("duc2004/run.sh", env, args=["alone-binary"])
    assert "config: experiment alone-binary" in result.stdout and "desired length 75 characters" in result.stdout
    assert "ROUGE: -m -b 75 -n 2" in result.stdout
    scores = json.loads((tmp_path / "results" / "alone-binary.json").read_text())
    # 200 tiny updates on ~600 pairs stay near a unigram model (its headlines are mostly empty), so
    # the scores are checked for being the script's, not for quality.
    assert scores["sentences"] > 0 and scores["references_per_sentence"] == 1
    assert 0 <= scores["rouge-2_recall"] <= scores["rouge-1_recall"] <= 100
    headlines = (tmp_path / "results" / "alone-binary.headlines").read_text().splitlines()
    assert len(headlines) == len((tmp_path / "text" / "test.article").read_text().splitlines())
