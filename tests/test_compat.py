"""Regression tests for fairseq_plugins/compat/ (the list REPAIRS).

Each test shows the breakage on stock fairseq (in a fresh interpreter, without
the plugin) and that importing the plugin repairs it. End-to-end coverage of the
same fixes through the CLIs is in test_cli_end_to_end.py.
"""

import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest


def python(code, *flags):
    return subprocess.run([sys.executable, *flags, "-c", textwrap.dedent(code)], capture_output=True, text=True)


SAVE_FAIRSEQ_LIKE_CHECKPOINT = """
    import argparse, sys, numpy as np, torch
    state = {"args": argparse.Namespace(arch="transformer"), "model": {"w": torch.ones(2)},
             "extra_state": {"best_bleu": np.float64(31.4), "history": np.arange(3)}}
    torch.save(state, "ckpt.pt")
"""


def test_checkpoint_globals_fail_on_stock_fairseq(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(SAVE_FAIRSEQ_LIKE_CHECKPOINT + """
    import fairseq
    torch.load("ckpt.pt")
    """)], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode != 0 and "Weights only load failed" in result.stderr


def test_checkpoint_globals_load_with_plugin_and_safety_stays_on(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(SAVE_FAIRSEQ_LIKE_CHECKPOINT + """
    import fairseq_plugins, pickle
    state = torch.load("ckpt.pt")
    assert state["args"].arch == "transformer" and state["extra_state"]["best_bleu"] == 31.4
    # Arbitrary classes are still refused: weights-only loading stays on.
    class Payload:
        def __reduce__(self):
            return (print, ("unsafe code ran",))
    torch.save({"x": Payload()}, "evil.pt")
    try:
        torch.load("evil.pt")
    except pickle.UnpicklingError:
        print("refused")
    """)], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "refused" in result.stdout and "unsafe code ran" not in result.stdout


def test_last_batch_is_kept():
    from fairseq.data import data_utils

    indices = np.arange(101, dtype=np.int64)
    sizes = dict(num_tokens_fn=lambda i: 10, max_tokens=160, required_batch_size_multiple=8)
    stock = data_utils.batch_by_size.__wrapped__(indices, **sizes)
    assert sum(map(len, stock)) < 101  # fairseq-fixed drops the tail batch
    patched = data_utils.batch_by_size(indices, **sizes)
    assert np.array_equal(np.concatenate(patched), indices)
    assert all(len(batch) % 8 == 0 for batch in patched[:-1])


def test_numpy2_shims():
    with pytest.raises(TypeError):
        np.percentile([1, 2, 3], 50, interpolation="lower")  # what fairseq calls
    from fairseq.data import TokenBlockDataset, data_utils

    sizes = np.array([3, 5, 9, 2, 7, 7, 1, 4])
    assert list(data_utils.get_buckets(sizes, 4)) == [2, 4, 7, 9]
    blocks = TokenBlockDataset([np.ones(n) for n in sizes], sizes, block_size=None, pad=1, eos=2, break_mode="eos")
    assert list(blocks.sizes) == list(sizes)


def test_import_is_quiet_under_deprecation_errors():
    stock = python("import fairseq", "-W", "error::DeprecationWarning")
    assert stock.returncode != 0
    plugin = python("import fairseq_plugins", "-W", "error::DeprecationWarning")
    assert plugin.returncode == 0, plugin.stderr
    assert plugin.stderr == ""


def test_the_readme_lists_every_repair_in_order():
    """README's troubleshooting list quotes compat.REPAIRS: one bullet per repair, in order."""
    from fairseq_plugins.compat import REPAIRS

    readme = open(os.path.join(os.path.dirname(__file__), "..", "README.md"), encoding="utf-8").read()
    section = readme.split("### What loading the user dir repairs", 1)[1].split("\n#", 1)[0]
    assert re.findall(r"^- `(\w+)`:", section, flags=re.M) == [repair.__name__ for repair in REPAIRS]
