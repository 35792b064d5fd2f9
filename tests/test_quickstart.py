"""The quickstart command end to end, shortened (the README's full run is in .ci/run)."""

import re

from conftest import run_cli


def test_quickstart_prints_bleu_with_signature(tmp_path):
    result = run_cli("fairseq-plugins-quickstart", "--work-dir", tmp_path / "qs", "--train-size", 800,
                     "--max-update", 20)
    assert re.search(r"^BLEU = \d+\.\d+ ", result.stdout, re.M), result.stdout
    assert re.search(r"^signature: nrefs:1\|case:mixed\|eff:no\|tok:13a\|smooth:exp\|version:", result.stdout, re.M)
    for step in ("fairseq_cli.preprocess", "fairseq_cli.train", "fairseq_cli.generate"):
        assert step in result.stderr
