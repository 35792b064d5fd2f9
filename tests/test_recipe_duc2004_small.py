"""recipes/duc2004 small mode, as CI runs it: run.sh chains prepare (real package descriptions of
this machine as article -> headline pairs), train (ALONE binary with an LDPE decoder at 2+2 layers,
d=128, 200 updates), average, generate through fairseq-generate's length_controlled_translation
task with a desired length of 75 characters, truncate at 75 bytes and score ROUGE with the
official script."""

import json
import os
import subprocess
import sys

import pytest

from recipe_helpers import run_recipe

ROUGE_EVAL = os.path.join(os.path.dirname(__file__), "..", "recipes", "duc2004", "rouge_eval.py")


def rouge(tmp_path, hypothesis, reference):
    (tmp_path / "hyp.txt").write_text(hypothesis + "\n")
    (tmp_path / "ref.txt").write_text(reference + "\n")
    subprocess.run([sys.executable, ROUGE_EVAL, tmp_path / "hyp.txt", tmp_path / "ref.txt", "--json", tmp_path / "out.json"],
                   check=True, capture_output=True)
    return json.loads((tmp_path / "out.json").read_text())


def test_rouge_runs_the_official_options_and_scores_a_hand_computed_case(tmp_path):
    scores = rouge(tmp_path, "police killed the gunman", "police kill the gunman")
    options = scores["rouge_options"].split()
    assert {"-m", "-b", "75", "-n", "2"} <= set(options) and options[options.index("-b") + 1] == "75"
    # Porter stemming (-m) makes "killed" match "kill": 4/4 unigrams, 3/3 bigrams, LCS 4/4.
    assert (scores["rouge-1_recall"], scores["rouge-2_recall"], scores["rouge-l_recall"]) == (100.0, 100.0, 100.0)
    # Only the first 75 bytes count: the reference's words after 76 bytes of others score nothing.
    late = rouge(tmp_path, "x" * 76 + " police kill the gunman", "police kill the gunman")
    assert late["rouge-1_recall"] == 0.0
    # Partial overlap by hand: 2 of the reference's 4 unigrams, none of its 3 bigrams.
    partial = rouge(tmp_path, "police arrest gunman today", "police kill the gunman")
    assert (partial["rouge-1_recall"], partial["rouge-2_recall"]) == (50.0, 0.0)


@pytest.mark.slow
def test_small_mode_runs_every_step(tmp_path):
    env = {"SMALL": "1", "WORK_DIR": str(tmp_path)}
    result = run_recipe("duc2004/run.sh", env, args=["alone-binary"])
    assert "config: experiment alone-binary" in result.stdout and "desired length 75 characters" in result.stdout
    scores = json.loads((tmp_path / "results" / "alone-binary.json").read_text())
    assert f"ROUGE-1.5.5.pl {scores['rouge_options']}," in result.stdout
    # 200 tiny updates on ~600 pairs stay near a unigram model (its headlines are mostly empty), so
    # the scores are checked for being the script's, not for quality.
    assert scores["sentences"] > 0 and scores["references_per_sentence"] == 1
    assert 0 <= scores["rouge-2_recall"] <= scores["rouge-1_recall"] <= 100
    headlines = (tmp_path / "results" / "alone-binary.headlines").read_text().splitlines()
    assert len(headlines) == len((tmp_path / "text" / "test.article").read_text().splitlines())
