"""fairseq-plugins-alone-quality: ALONE against standard embeddings through the real CLIs (tiny run)."""

import json

import pytest

from conftest import one_line_error, run_cli


@pytest.mark.slow
def test_alone_quality_trains_every_variant_and_seed(tmp_path):
    result = run_cli("fairseq-plugins-alone-quality", "--work-dir", tmp_path / "work", "--seeds", "1,2",
                     "--max-update", 3, "--train-size", 200, "--test-size", 16, "--json")
    report = json.loads(result.stdout)
    assert list(report["variants"]) == ["standard", "alone-binary", "alone-real"]
    standard, binary = report["variants"]["standard"], report["variants"]["alone-binary"]
    # V x d for the table against ALONE's one vector and its FFN (d x 4d and 4d x d) at d = 128.
    assert standard["embedding_parameters"] == report["vocab_size"] * 128
    assert binary["embedding_parameters"] == 128 + 2 * 128 * 512
    for name, row in report["variants"].items():
        assert sorted(row["bleu"]["by_seed"]) == ["1", "2"] and row["bleu"]["std"] is not None
        for seed in ("1", "2"):  # each seed's last validation in its own training log
            log = (tmp_path / "work" / f"train-{name}-seed{seed}.log").read_text()
            last = log.rsplit("valid on 'valid' subset", 1)[1]
            assert f"| nll_loss {row['valid_nll']['by_seed'][seed]} |" in last
    assert (tmp_path / "work" / "checkpoints-alone-real-seed2" / "checkpoint_last.pt").exists()


@pytest.mark.parametrize("flags, expected", [
    (["--variants", "alone,standard"], "--variants must be a comma-separated list among standard,alone-binary,alone-real"),
    (["--seeds", "one"], "--seeds must be comma-separated integers"),
])
def test_bad_flags_are_one_line(tmp_path, flags, expected):
    one_line_error(run_cli("fairseq-plugins-alone-quality", "--work-dir", tmp_path, *flags, check=False), expected)
