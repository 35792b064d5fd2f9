"""Our commands given missing or corrupt files: one clear line, nothing overwritten."""

import shutil

import torch

from conftest import one_line_error, run_cli


def test_average_missing_input(tmp_path):
    result = run_cli("fairseq-plugins-average", "--inputs", tmp_path / "nope.pt", "--output", tmp_path / "avg.pt",
                     check=False)
    one_line_error(result, "--inputs", "nope.pt")
    assert not (tmp_path / "avg.pt").exists()


def test_average_corrupt_input_leaves_existing_output_untouched(tmp_path):
    good = tmp_path / "good.pt"
    torch.save({"model": {"w": torch.ones(2)}}, good)
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(good.read_bytes()[:40])
    output = tmp_path / "avg.pt"
    output.write_text("previous result")
    result = run_cli("fairseq-plugins-average", "--inputs", good, corrupt, "--output", output, check=False)
    one_line_error(result, "--inputs", "corrupt.pt")
    assert output.read_text() == "previous result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["avg.pt", "corrupt.pt", "good.pt"]


def test_average_output_among_inputs(tmp_path):
    good = tmp_path / "good.pt"
    torch.save({"model": {"w": torch.ones(2)}}, good)
    result = run_cli("fairseq-plugins-average", "--inputs", good, "--output", good, check=False)
    one_line_error(result, "--output")


def test_average_too_few_checkpoints_in_directory(tmp_path):
    torch.save({"model": {"w": torch.ones(2)}}, tmp_path / "checkpoint_1_10.pt")
    result = run_cli("fairseq-plugins-average", "--inputs", tmp_path, "--num-update-checkpoints", 3,
                     "--output", tmp_path / "avg.pt", check=False)
    one_line_error(result, "--num-update-checkpoints 3", "only 1")


def test_quickstart_missing_raw_file(toy_raw, tmp_path):
    raw = tmp_path / "raw"
    shutil.copytree(toy_raw, raw)
    (raw / "valid.xx").unlink()
    result = run_cli("fairseq-plugins-quickstart", "--raw-dir", raw, "--work-dir", tmp_path / "work", check=False)
    one_line_error(result, "--raw-dir", "valid.xx")
    assert not (tmp_path / "work").exists()


def test_quickstart_mismatched_raw_files(toy_raw, tmp_path):
    raw = tmp_path / "raw"
    shutil.copytree(toy_raw, raw)
    with open(raw / "train.xx", "a") as f:
        f.write("one line too many\n")
    result = run_cli("fairseq-plugins-quickstart", "--raw-dir", raw, "--work-dir", tmp_path / "work", check=False)
    one_line_error(result, "train.en", "train.xx")


def test_quickstart_refuses_a_non_empty_work_dir(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    result = run_cli("fairseq-plugins-quickstart", "--work-dir", tmp_path, check=False)
    one_line_error(result, "--work-dir")
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_fairseq_train_on_a_missing_data_directory(tmp_path):
    from conftest import USER_DIR

    result = run_cli("fairseq-train", tmp_path / "no-such-dir", "--user-dir", USER_DIR, "--arch", "b2t_transformer",
                     "--task", "translation", "--source-lang", "en", "--target-lang", "xx", "--max-tokens", 1000, check=False)
    one_line_error(result, "no such file or directory", str(tmp_path / "no-such-dir"))


def test_fairseq_generate_with_a_missing_checkpoint(toy_bin, tmp_path):
    from conftest import USER_DIR

    result = run_cli("fairseq-generate", toy_bin, "--user-dir", USER_DIR, "--path", tmp_path / "no-such.pt", check=False)
    one_line_error(result, "--path", "no-such.pt")


def test_fairseq_generate_with_a_corrupt_checkpoint(toy_bin, tmp_path):
    from conftest import USER_DIR

    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a checkpoint\n" * 100)
    result = run_cli("fairseq-generate", toy_bin, "--user-dir", USER_DIR, "--path", corrupt, check=False)
    one_line_error(result, "corrupt.pt", "not a checkpoint")
