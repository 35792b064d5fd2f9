"""The real fairseq CLIs with the plugin loaded by --user-dir, on the tiny toy corpus.

Covers: training with each residual scheme (and stock `transformer`), resuming, generation from a checkpoint
in a new process (every sentence, none dropped), ensembles, averaged checkpoints,
fairseq-validate, fairseq-interactive, language-model training with
``--sample-break-mode eos`` and fairseq-eval-lm, ``--num-batch-buckets``, and
``--user-dir`` from another working directory.
"""

import os
import re

import pytest
import torch

from conftest import TOY_SPLITS, TRAIN_FLAGS, USER_DIR, count_hypotheses, run_cli

TEST_SENTENCES = dict(TOY_SPLITS)["test"]
SCHEMES = {
    "stock_transformer": ["--arch", "transformer"],
    "post_ln": ["--arch", "composable_transformer"],
    "pre_ln": ["--arch", "composable_transformer", "--encoder-residual", "pre_ln", "--decoder-residual", "pre_ln"],
    "b2t": ["--arch", "b2t_transformer"],
}


def train(data, save_dir, *flags, max_update=40):
    return run_cli(
        "fairseq-train", data, "--user-dir", USER_DIR, *TRAIN_FLAGS, *flags, "--max-update", max_update,
        "--save-dir", save_dir, "--save-interval-updates", 10, "--keep-interval-updates", 4, "--no-epoch-checkpoints",
    )


@pytest.fixture(scope="module")
def checkpoints(toy_bin, tmp_path_factory):
    """One trained checkpoint directory per residual scheme, and one of fairseq's own transformer."""
    root = tmp_path_factory.mktemp("checkpoints")
    for scheme, flags in SCHEMES.items():
        train(toy_bin, root / scheme, *flags)
    return root


def generate(data, path, *flags, cwd=None):
    return run_cli("fairseq-generate", data, "--user-dir", USER_DIR, "--path", path, "--gen-subset", "test",
                   "--beam", 4, "--batch-size", 16, *flags, cwd=cwd)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_generate_every_sentence_from_checkpoint(toy_bin, checkpoints, scheme):
    result = generate(toy_bin, checkpoints / scheme / "checkpoint_last.pt")
    assert count_hypotheses(result.stdout) == TEST_SENTENCES
    assert "Warning" not in result.stderr, result.stderr


def test_checkpoint_records_the_scheme(checkpoints):
    state = torch.load(checkpoints / "pre_ln" / "checkpoint_last.pt")
    model_args = state["cfg"]["model"]  # the argparse.Namespace of a legacy-argparse model
    assert (model_args.encoder_residual, model_args.decoder_residual) == ("pre_ln", "pre_ln")
    assert "encoder.layer_norm.weight" in state["model"]  # Pre-LN's final LayerNorm
    state = torch.load(checkpoints / "b2t" / "checkpoint_last.pt")
    assert state["cfg"]["model"].arch == "b2t_transformer" and "encoder.layer_norm.weight" not in state["model"]


def test_resume_training(toy_bin, checkpoints):
    result = train(toy_bin, checkpoints / "b2t", *SCHEMES["b2t"], max_update=45)
    log = result.stdout + result.stderr
    assert "Loaded checkpoint" in log and "num_updates 45" in log


def test_ensemble_decoding(toy_bin, checkpoints):
    paths = f"{checkpoints / 'b2t' / 'checkpoint_last.pt'}:{checkpoints / 'post_ln' / 'checkpoint_last.pt'}"
    assert count_hypotheses(generate(toy_bin, paths).stdout) == TEST_SENTENCES


def test_averaged_checkpoint_is_the_mean_and_decodes(toy_bin, checkpoints, tmp_path):
    average = tmp_path / "average.pt"
    run_cli("fairseq-plugins-average", "--inputs", checkpoints / "post_ln", "--num-update-checkpoints", 3,
            "--output", average)
    inputs = [torch.load(checkpoints / "post_ln" / f"checkpoint_{name}.pt")["model"]
              for name in ("2_20", "3_30", "3_40")]
    averaged = torch.load(average)["model"]
    name = "decoder.layers.1.fc2.weight"
    assert torch.allclose(averaged[name], sum(model[name] for model in inputs) / 3, atol=1e-6)
    assert count_hypotheses(generate(toy_bin, average).stdout) == TEST_SENTENCES


def test_validate_keeps_the_last_batch(toy_bin, checkpoints):
    # 101 sentences in batches of 16: 6 full batches and one of 5, which
    # fairseq-fixed drops (bsz 96) unless the compat fix is applied.
    result = run_cli("fairseq-validate", toy_bin, "--task", "translation", "--user-dir", USER_DIR, "--path",
                     checkpoints / "b2t" / "checkpoint_last.pt", "--valid-subset", "test", "--batch-size", 16)
    assert re.search(r"\| bsz 101\b", result.stdout + result.stderr), result.stderr[-2000:]


def test_interactive(toy_bin, checkpoints, toy_raw):
    with open(os.path.join(toy_raw, "test.en")) as f:
        sentences = f.read().splitlines()[:3]
    import subprocess
    from conftest import BIN_DIR

    result = subprocess.run(
        [os.path.join(BIN_DIR, "fairseq-interactive"), toy_bin, "--user-dir", USER_DIR, "--path",
         str(checkpoints / "b2t" / "checkpoint_last.pt"), "--source-lang", "en", "--target-lang", "xx", "--beam", "2"],
        input="\n".join(sentences) + "\n", capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert count_hypotheses(result.stdout) == 3


def test_user_dir_from_another_directory(toy_bin, checkpoints, tmp_path):
    directory = run_cli("fairseq-plugins-dir", cwd=tmp_path).stdout.strip()
    assert os.path.isabs(directory) and os.path.samefile(directory, USER_DIR)
    result = run_cli("fairseq-generate", toy_bin, "--user-dir", directory, "--path",
                     checkpoints / "b2t" / "checkpoint_last.pt", "--gen-subset", "test", "--batch-size", 64,
                     cwd=tmp_path)
    assert count_hypotheses(result.stdout) == TEST_SENTENCES


def test_num_batch_buckets(toy_bin, tmp_path):
    result = train(toy_bin, tmp_path, *SCHEMES["b2t"], "--num-batch-buckets", 4, max_update=3)
    assert "num_updates 3" in result.stdout + result.stderr


def test_language_model_eos_break_mode_and_eval_lm(toy_raw, tmp_path):
    data = tmp_path / "lm-bin"
    run_cli("fairseq-preprocess", "--only-source", "--trainpref", f"{toy_raw}/train.xx",
            "--validpref", f"{toy_raw}/valid.xx", "--testpref", f"{toy_raw}/test.xx", "--destdir", data,
            "--workers", 1)
    run_cli("fairseq-train", data, "--user-dir", USER_DIR, "--task", "language_modeling", "--arch", "transformer_lm",
            "--decoder-layers", 2, "--decoder-embed-dim", 64, "--decoder-ffn-embed-dim", 128,
            "--decoder-attention-heads", 2, "--sample-break-mode", "eos", "--tokens-per-sample", 64,
            "--optimizer", "adam", "--lr", "1e-3", "--max-tokens", 1024, "--max-update", 10,
            "--save-dir", tmp_path / "ckpt", "--no-epoch-checkpoints", "--no-progress-bar")
    result = run_cli("fairseq-eval-lm", data, "--user-dir", USER_DIR, "--path", tmp_path / "ckpt" / "checkpoint_last.pt",
                     "--gen-subset", "test", "--sample-break-mode", "eos", "--max-tokens", 1024)
    match = re.search(r"Evaluated ([\d,]+) tokens .*Perplexity: ([\d.]+)", result.stdout + result.stderr, re.S)
    assert match, result.stderr[-2000:]
    with open(os.path.join(toy_raw, "test.xx")) as f:
        tokens = sum(len(line.split()) + 1 for line in f)  # + end of sentence
    assert int(match.group(1).replace(",", "")) == tokens and float(match.group(2)) > 1
