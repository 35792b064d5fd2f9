"""SHAPE, ALONE and their composition with B2T through the real fairseq CLIs.

Also: incremental decoding equals full forced decoding for every option, ALONE's
embeddings come back bit for bit from a checkpoint in a new process, the probes
(shift invariance, extrapolation, parameter counts) run, and bad values stop
with one line.
"""

import collections
import json
import subprocess
import sys
import textwrap

import pytest
import torch

from conftest import (
    TINY_MODEL, TRAIN_FLAGS, TOY_SPLITS, USER_DIR, count_hypotheses, one_line_error, run_cli,
)
from fairseq_plugins.cli.dataless import model_from_flags

TEST_SENTENCES = dict(TOY_SPLITS)["test"]
ALONE_FLAGS = ["--embeddings", "alone", "--alone-inter-dim", "256"]
MODELS = {
    "shape": ["--arch", "shape_transformer", "--shape-max-shift", "8"],
    "alone": ["--arch", "alone_transformer", *ALONE_FLAGS],
    "b2t_shape_alone": ["--arch", "b2t_transformer", "--positions", "shape", "--shape-max-shift", "8", *ALONE_FLAGS],
}


@pytest.fixture(scope="module")
def trained(toy_bin, tmp_path_factory):
    root = tmp_path_factory.mktemp("shape-alone")
    for name, flags in MODELS.items():
        run_cli("fairseq-train", toy_bin, "--user-dir", USER_DIR, *TRAIN_FLAGS, *flags, "--max-update", 30,
                "--save-dir", root / name, "--no-epoch-checkpoints")
    return root


@pytest.mark.parametrize("name", MODELS)
def test_generate_from_checkpoint(toy_bin, trained, name):
    result = run_cli("fairseq-generate", toy_bin, "--user-dir", USER_DIR, "--path", trained / name / "checkpoint_last.pt",
                     "--gen-subset", "test", "--beam", 4, "--batch-size", 32)
    assert count_hypotheses(result.stdout) == TEST_SENTENCES


def test_composition_resumes_training(toy_bin, trained):
    result = run_cli("fairseq-train", toy_bin, "--user-dir", USER_DIR, *TRAIN_FLAGS, *MODELS["b2t_shape_alone"],
                     "--max-update", 35, "--save-dir", trained / "b2t_shape_alone", "--no-epoch-checkpoints")
    assert "Loaded checkpoint" in result.stdout + result.stderr and "num_updates 35" in result.stdout + result.stderr


EMBEDDINGS_FROM_CHECKPOINT = """
    import sys, torch, fairseq_plugins
    from fairseq import checkpoint_utils
    overrides = {"data": sys.argv[2], "seed": int(sys.argv[4])}
    models, cfg, task = checkpoint_utils.load_model_ensemble_and_task([sys.argv[1]], arg_overrides=overrides)
    fresh = task.build_model(cfg.model)  # what this seed alone would give, before the checkpoint's buffers
    torch.save({"loaded": models[0].decoder.embed_tokens.embedding_matrix(),
                "fresh": fresh.decoder.embed_tokens.embedding_matrix()}, sys.argv[3])
"""


def test_alone_checkpoint_is_self_contained(toy_bin, trained, tmp_path):
    checkpoint = trained / "alone" / "checkpoint_last.pt"
    state = torch.load(checkpoint)["model"]
    vocab, dim = state["encoder.embed_tokens.code_indices"].size(0), 128
    assert not [name for name, tensor in state.items() if tensor.numel() == vocab * dim]  # no V x d tensor saved
    matrices = []
    for seed in (1234, 99):  # fresh processes whose --seed would build other filters than training's
        out = tmp_path / f"embeddings{seed}.pt"
        subprocess.run([sys.executable, "-c", textwrap.dedent(EMBEDDINGS_FROM_CHECKPOINT), str(checkpoint),
                        toy_bin, str(out), str(seed)], check=True, capture_output=True)
        matrices.append(torch.load(out))
    assert not torch.equal(matrices[0]["fresh"], matrices[1]["fresh"])  # the seed does change the filters
    assert torch.equal(matrices[0]["loaded"], matrices[1]["loaded"])  # the checkpoint's filters win


def test_alone_has_no_trainable_vocabulary_matrix():
    model = model_from_flags(["--arch", "alone_transformer", *TINY_MODEL, "--share-all-embeddings", *ALONE_FLAGS], 500)
    assert all(param.numel() != 500 * 128 for param in model.parameters())
    logits = model(torch.randint(4, 500, (2, 6)), torch.tensor([6, 6]), torch.randint(4, 500, (2, 5)))[0]
    assert logits.shape == (2, 5, 500)  # the tied output matrix is computed from ALONE


def test_alone_ties_the_decoder_output_without_sharing_the_encoder():
    from fairseq_plugins.models.composable_transformer import TiedAloneProjection

    model = model_from_flags(["--arch", "alone_transformer", *TINY_MODEL, "--share-decoder-input-output-embed",
                              *ALONE_FLAGS], 300)
    assert model.encoder.embed_tokens is not model.decoder.embed_tokens
    assert isinstance(model.decoder.output_projection, TiedAloneProjection)
    assert model.decoder.output_projection.embedding is model.decoder.embed_tokens


INCREMENTAL_MODELS = {
    **MODELS, "post_ln": ["--arch", "composable_transformer"], "b2t": ["--arch", "b2t_transformer"],
    # k = 2 below the 6 decoding steps, so clipped distances are decoded too
    "relative": ["--arch", "relative_transformer", "--relative-max-distance", "2"],
    "b2t_relative_alone": ["--arch", "b2t_transformer", "--positions", "relative", "--relative-max-distance", "2",
                           *ALONE_FLAGS],
}


@pytest.mark.parametrize("name", INCREMENTAL_MODELS)
def test_incremental_decoding_matches_full_forward(name):
    model = model_from_flags([*INCREMENTAL_MODELS[name], *TINY_MODEL, "--share-all-embeddings"], 40).eval()
    generator = torch.Generator().manual_seed(1)
    src, prev = torch.randint(4, 40, (3, 7), generator=generator), torch.randint(4, 40, (3, 6), generator=generator)
    prev[:, 0] = 2
    with torch.no_grad():
        encoder_out = model.encoder(src, src_lengths=torch.full((3,), 7))
        full = model.decoder(prev, encoder_out=encoder_out)[0]
        state = {}
        steps = [model.decoder(prev[:, : t + 1], encoder_out=encoder_out, incremental_state=state)[0]
                 for t in range(prev.size(1))]
    assert torch.allclose(torch.cat(steps, dim=1), full, atol=1e-5)


def test_shift_invariance_probe(toy_bin, trained, tmp_path):
    plot = tmp_path / "shift.png"
    result = run_cli("fairseq-plugins-shift-invariance", toy_bin, "--path", trained / "shape" / "checkpoint_last.pt",
                     "--max-offset", 8, "--json", "--plot", plot)
    report = json.loads(result.stdout)
    assert report["offsets"] == list(range(9)) and report["similarity"][0] == pytest.approx(1.0)
    assert all(-1 <= value <= 1.0001 for value in report["similarity"]) and plot.stat().st_size > 0


@pytest.mark.slow  # trains three models (2 min on 2 cores)
def test_extrapolation_probe_small_run(tmp_path):
    result = run_cli("fairseq-plugins-extrapolation", "--work-dir", tmp_path / "work", "--train-size", 600,
                     "--test-size", 20, "--max-update", 5, "--max-train-length", 12, "--json")
    report = json.loads(result.stdout)
    assert set(report["bleu"]) == {"ape", "relative", "shape", "shape-offset0"} and report["pairs"]["test"] == 20
    # The second SHAPE decoding is the same checkpoint with the evaluation offset overridden to 0.
    assert "'shape_eval_offset': 'zero'" in (tmp_path / "work" / "generate-shape-offset0.txt").read_text()
    assert "'shape_eval_offset': 'zero'" not in (tmp_path / "work" / "generate-shape.txt").read_text()
    assert all(0 <= score <= 100 for score in report["bleu"].values()) and "nrefs:1" in report["signature"]
    assert all(0 < nll < 20 for nll in report["valid_nll"].values()) and set(report["valid_nll"]) == set(report["bleu"])
    # The claim under test needs every training source short and every test source longer.
    raw = tmp_path / "work" / "raw"
    for split, keep in (("train", lambda n: n <= 12), ("valid", lambda n: n <= 12), ("test", lambda n: n > 12)):
        lengths = [len(line.split()) for line in (raw / f"{split}.en").read_text().splitlines()]
        assert len(lengths) == report["pairs"][split] and all(map(keep, lengths)), split

    def bucket(length):  # 5 tokens wide above L = 12, the last one open
        low = 13 + (length - 13) // 5 * 5
        return ">27" if length > 27 else f"{low}-{low + 4}"

    assert report["bucket_pairs"] == dict(collections.Counter(map(bucket, lengths)))  # lengths: the test sources
    for scores in report["bleu_by_source_length"].values():
        assert list(scores) == list(report["bucket_pairs"]) and all(0 <= score <= 100 for score in scores.values())


def test_extrapolation_probe_rejects_unknown_models(tmp_path):
    result = run_cli("fairseq-plugins-extrapolation", "--work-dir", tmp_path, "--models", "ape,rotary", check=False)
    one_line_error(result, "--models must list distinct names among ape,relative,shape")


@pytest.mark.parametrize("shifts", ["10,x", "10,10", "-5"])
def test_extrapolation_probe_rejects_bad_shape_shifts(tmp_path, shifts):
    result = run_cli("fairseq-plugins-extrapolation", "--work-dir", tmp_path, "--shape-max-shift", shifts, check=False)
    one_line_error(result, f"--shape-max-shift must be distinct integers >= 0, comma-separated (got '{shifts}')")


@pytest.mark.slow  # trains two SHAPE models (1 min on 2 cores)
def test_extrapolation_probe_sweeps_shape_shifts(tmp_path):
    result = run_cli("fairseq-plugins-extrapolation", "--work-dir", tmp_path / "work", "--train-size", 600,
                     "--test-size", 20, "--max-update", 3, "--max-train-length", 12, "--models", "shape",
                     "--shape-max-shift", "0,7", "--json")
    report = json.loads(result.stdout)
    assert set(report["bleu"]) == {"shape-k0", "shape-k0-offset0", "shape-k7", "shape-k7-offset0"}
    for k in (0, 7):  # each model trained with its own K, each decoded with offset K and offset 0
        assert f"shape_max_shift={k}," in (tmp_path / "work" / f"train-shape-k{k}.log").read_text()
        assert "'shape_eval_offset': 'zero'" in (tmp_path / "work" / f"generate-shape-k{k}-offset0.txt").read_text()


def test_params_counts_alone_against_standard():
    flags = ["--share-all-embeddings", "--vocab-size", 2000, "--json", *TINY_MODEL]
    standard = json.loads(run_cli("fairseq-plugins-params", "--arch", "transformer", *flags).stdout)
    alone = json.loads(run_cli("fairseq-plugins-params", "--arch", "alone_transformer", *ALONE_FLAGS, *flags).stdout)
    assert standard["parameters"]["embedding"] == 2000 * 128
    assert alone["parameters"]["embedding"] == 2 * 128 * 256 + 128  # W1, W2 and the one shared vector
    assert alone["parameters"]["rest"] == standard["parameters"]["rest"]
    assert 0.48 < alone["alone_filters"]["encoder"]["density"] < 0.52


@pytest.mark.parametrize("flags, message", [
    (["--arch", "shape_transformer", "--shape-max-shift", "-1"], "--shape-max-shift must be >= 0"),
    (["--arch", "shape_transformer", "--shape-max-shift", "200000"], "--shape-max-shift 200000"),
    (["--arch", "alone_transformer", "--alone-codes", "1"], "--alone-codes"),
    (["--arch", "alone_transformer", "--alone-dropout", "1.5"], "--alone-dropout"),
    (["--arch", "composable_transformer", "--positions", "rotary"], "--positions must be one of sinusoidal, learned, shape"),
])
def test_bad_values_are_one_line(toy_bin, tmp_path, flags, message):
    result = run_cli("fairseq-train", toy_bin, "--user-dir", USER_DIR, *TRAIN_FLAGS, *flags, "--max-update", 1,
                     "--save-dir", tmp_path, check=False)
    one_line_error(result, message)


def test_alone_shared_embeddings_need_a_joined_dictionary(toy_raw, tmp_path):
    data = tmp_path / "separate-dicts"
    run_cli("fairseq-preprocess", "--source-lang", "en", "--target-lang", "xx", "--trainpref", f"{toy_raw}/train",
            "--validpref", f"{toy_raw}/valid", "--destdir", data, "--workers", 1)
    result = run_cli("fairseq-train", data, "--user-dir", USER_DIR, *TRAIN_FLAGS, "--arch", "alone_transformer",
                     "--max-update", 1, "--save-dir", tmp_path / "ckpt", check=False)
    one_line_error(result, "--share-all-embeddings", "--joined-dictionary")


@pytest.mark.parametrize("token_scale, expect_invariant", [(1e4, True), (1e-4, False)])
def test_shift_probe_separates_invariant_from_position_bound_encoders(token_scale, expect_invariant):
    """Token vectors that dwarf the positions make an encoder shift invariant, tiny ones make it all
    position: the probe must report ~1 for the first and clearly less for the second."""
    from fairseq_plugins.cli.shift_invariance import shift_similarities

    torch.manual_seed(0)
    model = model_from_flags(["--arch", "composable_transformer", *TINY_MODEL, "--dropout", "0"], 40).eval()
    with torch.no_grad():
        model.encoder.embed_tokens.weight.mul_(token_scale)
    src = torch.randint(4, 40, (3, 9))
    similarities = shift_similarities(model, {"src_tokens": src, "src_lengths": torch.full((3,), 9)}, 8)
    assert similarities[0] == pytest.approx(1.0)
    if expect_invariant:
        assert min(similarities) > 0.999
    else:
        assert similarities[8] < 0.9
