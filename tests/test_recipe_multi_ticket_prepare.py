"""recipes/multi_ticket/prepare.sh in full mode against fake downloads: a file:// mirror with a
stand-in roberta.base archive and a byte-level GPT-2 BPE (no merges), and a GLUE_DIR with tiny MRPC
and STS-B files; checks the binarized sentence_prediction layout fairseq's GLUE example produces."""

import io
import json
import tarfile

import pytest

from fairseq.data.encoders.gpt2_bpe_utils import bytes_to_unicode
from recipe_helpers import run_recipe

pytestmark = pytest.mark.slow

PAIRS = [("the cat sat on the mat", "a cat was sitting on the mat"), ("stocks fell", "shares went down sharply"),
         ("he left early", "she arrived late"), ("rain is expected", "it will probably rain")]


def add_file(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


@pytest.fixture
def mirror(tmp_path):
    root = tmp_path / "mirror"
    root.mkdir()
    byte_tokens = bytes_to_unicode()
    (root / "encoder.json").write_text(json.dumps({char: byte for byte, char in byte_tokens.items()}))
    (root / "vocab.bpe").write_text("#version: 0.2\n")
    with tarfile.open(root / "roberta.base.tar.gz", "w:gz") as tar:
        add_file(tar, "roberta.base/model.pt", b"stand-in")
        add_file(tar, "roberta.base/dict.txt", "".join(f"{i} 1\n" for i in range(256)).encode())
    glue = tmp_path / "glue"
    (glue / "MRPC").mkdir(parents=True)
    (glue / "STS-B").mkdir()
    for split in ("train", "dev"):
        (glue / "MRPC" / f"{split}.tsv").write_text("Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n" + "".join(
            f"{i % 2}\t{i}\t{i + 100}\t{a}\t{b}\n" for i, (a, b) in enumerate(PAIRS)))
        (glue / "STS-B" / f"{split}.tsv").write_text("index\tgenre\tsentence1\tsentence2\tscore\n" + "".join(
            f"{i}\tnews\t{a}\t{b}\t{i + 1.5}\n" for i, (a, b) in enumerate(PAIRS)))
    return root, glue


def test_full_mode_prepare_binarizes_mrpc_and_stsb_like_fairseqs_glue_example(mirror, tmp_path):
    root, glue = mirror
    work = tmp_path / "work"
    run_recipe("multi_ticket/prepare.sh", {"WORK_DIR": str(work), "MIRROR": f"file://{root}", "GLUE_DIR": str(glue)})
    for task in ("MRPC", "STS-B"):
        for part in ("input0", "input1"):
            assert (work / "data-bin" / task / part / "train.bin").exists()
            assert (work / "data-bin" / task / part / "valid.idx").exists()
    # BPE ids of the first sentence: one per byte with a merge-free byte-level BPE
    first = (work / "text" / "MRPC" / "train.input0").read_text().splitlines()[0].split()
    assert first == [str(b) for b in PAIRS[0][0].encode()]
    # fairseq-preprocess pads every dictionary to a multiple of 8 with madeupword entries, as in fairseq's GLUE example
    labels = [l.split()[0] for l in (work / "data-bin" / "MRPC" / "label" / "dict.txt").read_text().splitlines()]
    assert sorted(l for l in labels if not l.startswith("madeupword")) == ["0", "1"]
    assert (work / "data-bin" / "STS-B" / "label" / "valid.label").read_text().split() == ["0.3", "0.5", "0.7", "0.9"]
    assert (work / "pretrained" / "model.pt").read_bytes() == b"stand-in"
    again = run_recipe("multi_ticket/prepare.sh", {"WORK_DIR": str(work), "MIRROR": f"file://{root}", "GLUE_DIR": str(glue)})
    assert "skip binarize" in again.stderr
