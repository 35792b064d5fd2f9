"""Length control decodes to the requested length: an LDPE model (``--length-unit chars``) trained on
targets whose length nothing but the length encoding can predict, then asked for 30, 50 and 75
characters with ``fairseq-generate --task length_controlled_translation --desired-length``.

The source is the same for every pair and the target words are random, so the only signal for where
to stop is the remaining length the decoder's positions encode: if ``--desired-length`` did not
reach the positions (or they ignored it), all three requests would give the same lengths.
"""

import random
import statistics

import pytest

from conftest import TINY_MODEL, USER_DIR, run_cli

pytestmark = pytest.mark.slow

WORDS = ["ab", "cde", "fghi", "jklmn", "opqrst", "uv", "wxy", "zab", "cdef", "ghijk"]
REQUESTS = (30, 50, 75)


def write_split(prefix, pairs, seed):
    rng = random.Random(seed)
    with open(f"{prefix}.src", "w") as src, open(f"{prefix}.tgt", "w") as tgt:
        for _ in range(pairs):
            src.write("make a line\n")
            tgt.write(" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 22))) + "\n")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("length-control")
    for split, pairs, seed in (("train", 2000, 1), ("valid", 50, 2), ("test", 40, 3)):
        write_split(root / split, pairs, seed)
    run_cli("fairseq-preprocess", "--source-lang", "src", "--target-lang", "tgt", "--joined-dictionary",
            "--trainpref", root / "train", "--validpref", root / "valid", "--testpref", root / "test",
            "--destdir", root / "bin", "--workers", "1")
    run_cli("fairseq-train", root / "bin", "--user-dir", USER_DIR, *TINY_MODEL, "--arch", "b2t_transformer",
            "--share-all-embeddings", "--positions", "ldpe", "--length-unit", "chars",
            "--optimizer", "adam", "--lr", "2e-3", "--lr-scheduler", "inverse_sqrt", "--warmup-updates", 50,
            "--criterion", "cross_entropy", "--max-tokens", 4096, "--max-update", 400, "--seed", 1,
            "--save-dir", root / "ckpt", "--no-epoch-checkpoints", "--no-progress-bar", "--log-format", "simple")
    return root


def output_characters(trained, desired):
    result = run_cli("fairseq-generate", trained / "bin", "--user-dir", USER_DIR, "--path",
                     trained / "ckpt" / "checkpoint_last.pt", "--task", "length_controlled_translation",
                     "--desired-length", desired, "--gen-subset", "test", "--beam", 4, "--batch-size", 40,
                     "--max-len-a", 0, "--max-len-b", 60)
    hypotheses = [line.split("\t")[2] for line in result.stdout.splitlines() if line.startswith("H-")]
    assert len(hypotheses) == 40
    # The unit the model counts: every word and the space after it (the chars rule for word tokens).
    return [len(text) + 1 for text in hypotheses]


def test_outputs_follow_the_requested_length(trained):
    means = {desired: statistics.mean(output_characters(trained, desired)) for desired in REQUESTS}
    for desired, mean in means.items():
        assert abs(mean - desired) <= 0.15 * desired, means
    assert means[30] < means[50] < means[75], means
