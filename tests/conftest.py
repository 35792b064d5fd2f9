"""Shared fixtures: a tiny binarized toy corpus and a runner for the real CLIs.

fairseq jobs run one at a time (two at once on 2 cores are ~8x slower each).
"""

import os
import subprocess
import sys

import pytest

from fairseq_plugins.cli.user_dir import user_dir
from fairseq_plugins.synthetic_translation import write_corpus

USER_DIR = user_dir()
BIN_DIR = os.path.dirname(sys.executable)
# Split sizes that are not multiples of fairseq's --required-batch-size-multiple (8).
TOY_SPLITS = (("train", 1500), ("valid", 61), ("test", 101))
TINY_MODEL = (
    "--encoder-layers 2 --decoder-layers 2 --encoder-embed-dim 128 --decoder-embed-dim 128 "
    "--encoder-ffn-embed-dim 256 --decoder-ffn-embed-dim 256 "
    "--encoder-attention-heads 4 --decoder-attention-heads 4"
).split()
TRAIN_FLAGS = TINY_MODEL + (
    "--share-all-embeddings --optimizer adam --lr 2e-3 --lr-scheduler inverse_sqrt --warmup-updates 20 "
    "--criterion label_smoothed_cross_entropy --label-smoothing 0.1 --max-tokens 2048 "
    "--log-format simple --log-interval 10 --seed 1 --no-progress-bar"
).split()


def run_cli(name, *args, cwd=None, check=True):
    """Run an installed console script (fairseq's or ours) of this venv; return the result."""
    command = [os.path.join(BIN_DIR, name), *map(str, args)]
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(command)} exited {result.returncode}:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}")
    return result


def one_line_error(result, *expected):
    """The command failed with exactly one non-empty stderr line, containing ``expected``."""
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip() and "INFO" not in line]
    assert "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 1, result.stderr
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="session")
def toy_raw(tmp_path_factory):
    return write_corpus(str(tmp_path_factory.mktemp("toy") / "raw"), TOY_SPLITS)


@pytest.fixture(scope="session")
def toy_bin(toy_raw, tmp_path_factory):
    dest = tmp_path_factory.mktemp("toy-bin")
    run_cli(
        "fairseq-preprocess", "--source-lang", "en", "--target-lang", "xx", "--joined-dictionary",
        "--trainpref", f"{toy_raw}/train", "--validpref", f"{toy_raw}/valid", "--testpref", f"{toy_raw}/test",
        "--destdir", dest, "--workers", "1",
    )
    return str(dest)


def count_hypotheses(generate_stdout):
    return sum(line.startswith("H-") for line in generate_stdout.splitlines())


def build_through_namespace_api(data, task, arch, *flags):
    """A model built as scripts and hub-style loading build it: ``options.parse_args_and_arch`` +
    ``task.build_model(args)`` (fairseq-train fills unset options through its dataclasses instead)."""
    from fairseq import options, tasks

    parser = options.get_training_parser()
    args = options.parse_args_and_arch(parser, [str(data), "--user-dir", USER_DIR, "--task", task, "--arch", arch, *map(str, flags)])
    return args, tasks.setup_task(args).build_model(args)
