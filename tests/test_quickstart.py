"""The quickstart command end to end, shortened. Slow: .ci/run runs the README's full quickstart
before the default suite, so the default suite leaves this to the slow pass."""

import re

import pytest

from conftest import run_cli

pytestmark = pytest.mark.slow


def test_quickstart_prints_bleu_with_signature(tmp_path):
    result = run_cli("fairseq-plugins-quickstart", "--work-dir", tmp_path / "qs", "--train-size", 800,
                     "--max-update", 20)
    assert re.search(r"^BLEU = \d+\.\d+ ", result.stdout, re.M), result.stdout
    assert re.search(r"^signature: nrefs:1\|case:mixed\|eff:no\|tok:13a\|smooth:exp\|version:", result.stdout, re.M)
    for step in ("fairseq-preprocess ", "fairseq-train ", "fairseq-generate "):
        assert step in result.stderr
