"""recipes/duc2004/prepare.sh against a fake download (a file:// Gigaword archive in Rush et al.'s
sumdata/ layout with tiny contents) and a fake DUC 2004 directory: the error on missing licensed
data comes first, then download with restart of a corrupt partial file, and skip on a re-run."""

import io
import tarfile

import pytest

from recipe_helpers import error_line, run_recipe

ARTICLES = [f"the {w} council approved a plan on {d} to build new roads in the city" for w, d in
            zip("city state school police farm port army bank club court".split(), "monday tuesday".split() * 5)]
HEADLINES = [f"{w} council approves road plan" for w in "city state school police farm port army bank club court".split()]


def lines(texts):
    return ("\n".join(texts) + "\n").encode()


@pytest.fixture(scope="module")
def gigaword(tmp_path_factory):
    path = tmp_path_factory.mktemp("gigaword") / "summary.tar.gz"
    files = {"sumdata/train/train.article.txt": ARTICLES * 3, "sumdata/train/train.title.txt": HEADLINES * 3,
             "sumdata/train/valid.article.filter.txt": ARTICLES[:4], "sumdata/train/valid.title.filter.txt": HEADLINES[:4]}
    with tarfile.open(path, "w:gz") as tar:
        for name, texts in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(lines(texts))
            tar.addfile(info, io.BytesIO(lines(texts)))
    return path


def duc_dir(root, refs=4):
    root.mkdir()
    (root / "input.txt").write_bytes(lines(ARTICLES[:5]))
    for i in range(refs):
        (root / f"task1_ref{i}.txt").write_bytes(lines(HEADLINES[i:i + 5]))
    return root


def env_for(work, **extra):
    return {"WORK_DIR": str(work), "SPM_VOCAB": "60", "WORKERS": "1", **extra}


def test_missing_duc_is_one_line_before_any_download(gigaword, tmp_path):
    work = tmp_path / "work"
    result = run_recipe("duc2004/prepare.sh", env_for(work, GIGAWORD_URL=f"file://{gigaword}"), check=False)
    line = error_line(result)
    assert "licensed by NIST" in line and "DUC2004_DIR" in line
    assert not (work / "downloads").exists()


def test_incomplete_duc_dir_names_the_missing_file(gigaword, tmp_path):
    env = env_for(tmp_path / "work", GIGAWORD_URL=f"file://{gigaword}", DUC2004_DIR=str(duc_dir(tmp_path / "duc", 3)))
    assert "lacks task1_ref3.txt" in error_line(run_recipe("duc2004/prepare.sh", env, check=False))


def test_download_restart_then_skip(gigaword, tmp_path):
    work = tmp_path / "work"
    (work / "downloads").mkdir(parents=True)
    size = gigaword.stat().st_size
    (work / "downloads" / "summary.tar.gz.part").write_bytes(b"<html>quota exceeded</html>"[: size // 2])
    env = env_for(work, GIGAWORD_URL=f"file://{gigaword}", DUC2004_DIR=str(duc_dir(tmp_path / "duc")))
    first = run_recipe("duc2004/prepare.sh", env)
    assert "summary.tar.gz is incomplete or corrupt after the resume" in first.stderr
    assert (work / "downloads" / "summary.tar.gz").read_bytes() == gigaword.read_bytes()
    assert sorted(p.name for p in (work / "text").glob("test.ref*")) == [f"test.ref{i}" for i in range(4)]
    assert (work / "data-bin" / "test.article-headline.headline.bin").exists()

    env["GIGAWORD_URL"] = f"file://{tmp_path}/missing.tar.gz"
    again = run_recipe("duc2004/prepare.sh", env)
    for step in ("text", "sentencepiece", "encode", "preprocess"):
        assert f"skip {step} (done" in again.stderr
