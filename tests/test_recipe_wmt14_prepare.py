"""recipes/wmt14_en_de/prepare.sh against a fake download directory (file:// mirror of the official
archives with tiny contents): download, resume of a partial file, restart of a corrupt one, skip of
finished steps on a re-run, and the error for a missing source."""

import io
import os
import shutil
import tarfile

import pytest

from recipe_helpers import error_line, run_recipe

YEARS = (2010, 2011, 2012, 2013, 2014, 2015, 2016)
WORDS = "the house is small the cat sleeps a dog runs far we read books".split()
GERMAN = "das Haus ist klein die Katze schläft ein Hund läuft weit wir lesen Bücher".split()


def sentences(words, count, seed):
    return [" ".join(words[(seed + i * 3 + j) % len(words)] for j in range(4 + (i + seed) % 5)) for i in range(count)]


def sgm(lines, lang):
    segments = "".join(f'<seg id="{i + 1}">{line}</seg>\n' for i, line in enumerate(lines))
    return f'<srcset setid="x" srclang="any"><doc docid="d" genre="news" origlang="{lang}">\n{segments}</doc></srcset>\n'


def write_tgz(path, files):
    with tarfile.open(path, "w:gz") as tar:
        for name, text in files.items():
            data = text.encode("utf-8")
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def corpus(count, seed):
    return {"en": "\n".join(sentences(WORDS, count, seed)) + "\n", "de": "\n".join(sentences(GERMAN, count, seed)) + "\n"}


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    root = tmp_path_factory.mktemp("wmt14-mirror")
    europarl, crawl, news = corpus(60, 1), corpus(40, 2), corpus(30, 3)
    write_tgz(root / "training-parallel-europarl-v7.tgz",
              {f"training/europarl-v7.de-en.{lang}": text for lang, text in europarl.items()})
    write_tgz(root / "training-parallel-commoncrawl.tgz",
              {f"commoncrawl.de-en.{lang}": text for lang, text in crawl.items()})
    write_tgz(root / "training-parallel-nc-v9.tgz",
              {f"training/news-commentary-v9.de-en.{lang}": text for lang, text in news.items()})
    dev = {}
    for year in YEARS:
        for lang, words in (("en", WORDS), ("de", GERMAN)):
            side = "src" if lang == "en" else "ref"
            dev[f"dev/newstest{year}-{side}.{lang}.sgm"] = sgm(sentences(words, 9 + year % 7, year), lang)
    write_tgz(root / "dev.tgz", dev)
    write_tgz(root / "test-full.tgz", {
        f"test-full/newstest2014-deen-{side}.{lang}.sgm": sgm(sentences(words, 12, 14), lang)
        for side, lang, words in (("src", "en", WORDS), ("ref", "de", GERMAN))
    })
    return root


def env_for(work, mirror_dir):
    return {"WORK_DIR": str(work), "WMT14_MIRROR": f"file://{mirror_dir}", "SPM_VOCAB": "60", "WORKERS": "1"}


def test_download_resume_restart_then_skip(mirror, tmp_path):
    work, downloads = tmp_path / "work", tmp_path / "work" / "downloads"
    downloads.mkdir(parents=True)
    europarl = (mirror / "training-parallel-europarl-v7.tgz").read_bytes()
    (downloads / "training-parallel-europarl-v7.tgz.part").write_bytes(europarl[: len(europarl) // 2])
    crawl = (mirror / "training-parallel-commoncrawl.tgz").read_bytes()
    (downloads / "training-parallel-commoncrawl.tgz.part").write_bytes(b"x" * (len(crawl) // 2))  # corrupt

    first = run_recipe("wmt14_en_de/prepare.sh", env_for(work, mirror))
    assert f"resume file://{mirror}/training-parallel-europarl-v7.tgz after {len(europarl) // 2} bytes" in first.stderr
    assert "training-parallel-commoncrawl.tgz is incomplete or corrupt after the resume" in first.stderr
    for archive in mirror.iterdir():
        assert (downloads / archive.name).read_bytes() == archive.read_bytes()
    assert not list(downloads.glob("*.part"))
    test_sets = (work / "data-bin" / "test_sets.txt").read_text().split()
    assert test_sets == [f"newstest{y}" for y in (2014, 2010, 2011, 2012, 2013, 2015, 2016)]
    assert (work / "text" / "newstest2014.de").read_text().count("\n") == 12  # the full 2014 set, from test-full/
    assert (work / "data-bin" / "test6.en-de.de.bin").exists()

    # A re-run downloads nothing (the mirror is gone) and skips every finished step.
    empty = tmp_path / "gone"
    empty.mkdir()
    again = run_recipe("wmt14_en_de/prepare.sh", env_for(work, empty))
    for step in ("text", "clean", "sentencepiece", "encode", "preprocess"):
        assert f"skip {step} (done" in again.stderr
    assert "] download " not in again.stderr and "] resume " not in again.stderr


def test_missing_source_is_one_line(mirror, tmp_path):
    partial = tmp_path / "partial-mirror"
    shutil.copytree(mirror, partial)
    os.remove(partial / "dev.tgz")
    result = run_recipe("wmt14_en_de/prepare.sh", env_for(tmp_path / "work", partial), check=False)
    line = error_line(result)
    assert "prepare.sh: error: cannot download" in line and "dev.tgz" in line and "WMT14_MIRROR" in line
    assert not (tmp_path / "work" / ".done" / "text").exists()


def test_raw_dir_without_a_split_is_one_line(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    for name in ("train.en", "train.de", "valid.en", "valid.de", "test.en"):
        (raw / name).write_text("a b\n")
    result = run_recipe("wmt14_en_de/prepare.sh", {"WORK_DIR": str(tmp_path / "w"), "RAW_DIR": str(raw)}, check=False)
    assert "lacks test.de" in error_line(result)
