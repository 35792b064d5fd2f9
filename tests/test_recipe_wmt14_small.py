"""recipes/wmt14_en_de small mode, as CI runs it: run.sh chains prepare (the toy corpus), train
(b2t-6l at 2+2 layers, d=128, 200 updates), average the last 10 checkpoints, generate with beam 4
and lenpen 0.6, detokenize and score with sacrebleu's signature."""

import json
import statistics

import pytest
import torch

from fairseq_plugins.cli.checkpoints import read_checkpoint_state
from recipe_helpers import error_line, run_recipe


@pytest.mark.slow
def test_small_mode_runs_every_step(tmp_path):
    result = run_recipe("wmt14_en_de/run.sh", {"SMALL": "1", "WORK_DIR": str(tmp_path)}, args=["b2t-6l"])
    assert "averaged 10 checkpoints" in result.stdout + result.stderr
    assert "b2t-6l\tnewstest2014\tBLEU = " in result.stdout
    assert "signature: nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:" in result.stdout
    row = json.loads((tmp_path / "results" / "b2t-6l.json").read_text())
    assert row["avg2010-2016"] is None  # the small mode has one test set
    # 200 tiny updates are far from translating (BLEU ~0.3 with short outputs), but the words are
    # right well above chance: unigram precision ~23 against 0.7 after 30 updates.
    bleu = json.loads((tmp_path / "results" / "b2t-6l" / "newstest2014.bleu.json").read_text())
    assert float(bleu["verbose_score"].split("/")[0]) > 10, bleu
    hypotheses = (tmp_path / "results" / "b2t-6l" / "newstest2014.de").read_text().splitlines()
    assert len(hypotheses) == len((tmp_path / "text" / "newstest2014.de").read_text().splitlines())
    assert not any("\u2581" in line for line in hypotheses)  # sentencepiece pieces were detokenized


@pytest.mark.slow  # four 20-update trainings and their evaluations (~3 min on 2 cores)
def test_compare_trains_every_seed_and_tabulates(tmp_path):
    env = {"SMALL": "1", "WORK_DIR": str(tmp_path), "MAX_UPDATE": "20", "CHECKPOINTS": "2", "SEEDS": "1 2"}
    run_recipe("wmt14_en_de/prepare.sh", env)
    result = run_recipe("wmt14_en_de/compare.sh", env, args=["standard", "alone-binary"])
    table = json.loads((tmp_path / "results" / "compare.json").read_text())
    assert table["seeds"] == [1, 2] and table["test_set"] == "newstest2014" and "nrefs:1" in table["signature"]
    for experiment in ("standard", "alone-binary"):
        row = table["experiments"][experiment]
        runs = {seed: json.loads((tmp_path / "results" / f"{experiment}-seed{seed}.json").read_text()) for seed in (1, 2)}
        assert row["bleu"]["by_seed"] == {str(seed): run["newstest2014"] for seed, run in runs.items()}
        assert row["bleu"]["mean"] == round(statistics.mean(run["newstest2014"] for run in runs.values()), 2)
        assert row["bleu"]["std"] == round(statistics.stdev(run["newstest2014"] for run in runs.values()), 2)
        assert f"{experiment}\t{row['parameters']['embedding']}\t" in (tmp_path / "results" / "compare.tsv").read_text()
        # each seed is its own training: its --seed in its own log, and its own weights
        for seed in (1, 2):
            log = (tmp_path / "checkpoints" / f"{experiment}-seed{seed}" / "train.log").read_text()
            assert f"'seed': {seed}," in log
        weights = [read_checkpoint_state(runs[seed]["checkpoint"])["model"] for seed in (1, 2)]
        assert any(not torch.equal(weights[0][key], weights[1][key]) for key in weights[0])
    standard, alone = (table["experiments"][name]["parameters"] for name in ("standard", "alone-binary"))
    # V x d against ALONE's 2 d D_inter + d at the small mode's d = 128, D_inter = 256 (the README's formula)
    vocab_size = 4 + len((tmp_path / "data-bin" / "dict.en.txt").read_text().splitlines())  # + fairseq's specials
    assert standard["embedding"] == vocab_size * 128 and alone["embedding"] == 2 * 128 * 256 + 128
    assert alone["rest"] == standard["rest"]
    assert "alone-binary" in result.stdout and "BLEU mean" in result.stdout
    again = run_recipe("wmt14_en_de/compare.sh", env, args=["standard"])
    assert "skip standard seed 1 (results exist)" in again.stderr and "skip standard seed 2" in again.stderr


def test_compare_names_bad_seeds(tmp_path):
    result = run_recipe("wmt14_en_de/compare.sh", {"SMALL": "1", "WORK_DIR": str(tmp_path), "SEEDS": "1 two"},
                        args=["standard"], check=False)
    assert "SEEDS must be integers separated by spaces (got '1 two')" in error_line(result)
