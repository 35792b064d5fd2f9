"""What the commands and recipes share (cli/common.py, cli/fairseq_runs.py, recipes/lib.sh): --user-dir on
every command that loads a checkpoint, one JSON/table output, one runner for fairseq commands and its
failure rule, one parser of fairseq's validation lines, one schema for scores over seeds."""

import json
import os
import subprocess
import sys

import pytest

from conftest import USER_DIR
from fairseq_plugins.cli import common, dip_evaluate, ensemble, explain, fairseq_runs, ner_report, predict, shift_invariance
from recipe_helpers import REPO

# what fairseq-train (--log-format simple), fairseq-validate and fairseq-train --log-format json write
LOG = """\
2026-01-01 00:00:01 | INFO | train_inner | epoch 001:     10 / 20 loss=5.1, nll_loss=4.9, ppl=29.8, num_updates=10
2026-01-01 00:00:02 | INFO | valid | epoch 001 | valid on 'valid' subset | loss 4.812 | nll_loss 4.6 | ppl 24.25 | num_updates 20
2026-01-01 00:00:03 | INFO | valid | epoch 002 | valid on 'valid' subset | loss 3.5 | nll_loss 3.25 | ppl 9.51 | num_updates 40 | best_loss 3.5
2026-01-01 00:00:04 | INFO | fairseq_cli.validate | valid on 'test' subset | loss 0.61 | accuracy 87.5 | wps 0 | wpb 64 | bsz 64
2026-01-01 00:00:05 | INFO | valid | {"epoch": 3, "valid_loss": "3.1", "valid_ppl": "8.57", "valid_num_updates": "60"}
"""


@pytest.mark.parametrize("command", [ensemble, dip_evaluate, shift_invariance, predict, ner_report, explain])
def test_commands_that_load_checkpoints_take_user_dir(command):
    argv = {ensemble: ["data", "--path", "a.pt:b.pt"], dip_evaluate: ["data", "--dip", "a.pt"],
            shift_invariance: ["data", "--path", "a.pt"], predict: ["--path", "a.pt"],
            ner_report: ["data", "--path", "a.pt"], explain: ["data", "--path", "a.pt"]}[command]
    assert command.parse_args([*argv, "--user-dir", USER_DIR]).user_dir == USER_DIR


def test_json_goes_to_stdout_or_to_files_beside_the_table(tmp_path, capsys):
    parser = common.command_parser("prog", "A command.")
    common.add_json_output(parser)
    results = {"score": 1.5}

    def table(results):
        return f"score is {results['score']}"

    common.write_results(results, parser.parse_args(["--json"]), table)
    assert json.loads(capsys.readouterr().out) == results
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    common.write_results(results, parser.parse_args(["--json", str(first), "--json", str(second)]), table)
    assert capsys.readouterr().out.strip() == table(results)
    assert json.loads(first.read_text()) == results == json.loads(second.read_text())
    common.write_results(results, parser.parse_args([]), table)
    assert capsys.readouterr().out.strip() == table(results)


def test_seed_statistics_is_the_mean_and_sample_std_by_seed():
    summary = common.seed_statistics({1: 1.0, 2: 2.0, 3: 6.0})
    assert summary["mean"] == 3.0 and summary["std"] == pytest.approx(((4 + 1 + 9) / 2) ** 0.5)
    assert summary["by_seed"] == {"1": 1.0, "2": 2.0, "3": 6.0}
    assert common.seed_statistics({7: 80.0})["std"] is None  # one seed: no spread


def test_validations_of_simple_and_json_logs():
    records = fairseq_runs.validations(LOG, "valid")
    assert [record["loss"] for record in records] == [4.812, 3.5, 3.1]
    assert records[1] == {"loss": 3.5, "nll_loss": 3.25, "ppl": 9.51, "num_updates": 40, "best_loss": 3.5}
    assert fairseq_runs.last_validation(LOG, "test")["accuracy"] == 87.5
    with pytest.raises(fairseq_runs.ConfigError, match="no validation on 'train'"):
        fairseq_runs.last_validation(LOG, "train")


def test_a_failing_fairseq_command_is_one_line_naming_its_log(tmp_path, capsys):
    log = tmp_path / "run" / "train.log"
    command = [sys.executable, "-c", "import sys; print('loading'); print('the last thing it said'); sys.exit(3)"]
    with pytest.raises(fairseq_runs.FairseqCommandFailed) as failure:
        fairseq_runs.run_fairseq(command, str(log))
    message = str(failure.value)
    assert "\n" not in message and "exit 3" in message and str(log) in message and "the last thing it said" in message
    assert capsys.readouterr().err.startswith("+ ")  # the command, echoed before it runs
    fairseq_runs.run_fairseq([sys.executable, "-c", "print('fine')"], str(log))
    assert log.read_text() == "fine\n"


def lib_sh(script, cwd):
    result = subprocess.run(["bash", "-c", f'set -euo pipefail; . "{REPO}/recipes/lib.sh"; {script}'], cwd=cwd,
                            capture_output=True, text=True, env={**os.environ, "PATH": os.path.dirname(sys.executable)
                                                                 + os.pathsep + os.environ["PATH"]})
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_recipe_helpers_name_runs_make_work_dirs_and_read_validations(tmp_path):
    assert lib_sh('seeded_run dense 3; SEED=2 seeded_run dip; seeded_run erm; SEED=2 seeded_run erm ""', tmp_path) == \
        ["dense-seed3", "dip-seed2", "erm", "erm"]
    assert lib_sh('work_dir runs; echo "$WORK_DIR"; WORK_DIR=other; work_dir runs; echo "$WORK_DIR"', tmp_path) == \
        [str(tmp_path / "runs"), str(tmp_path / "other")]
    assert (tmp_path / "runs").is_dir() and (tmp_path / "other").is_dir()
    (tmp_path / "train.log").write_text(LOG)
    assert lib_sh("last_validation train.log test accuracy; last_validation train.log valid ppl", tmp_path) == ["87.5", "8.57"]
