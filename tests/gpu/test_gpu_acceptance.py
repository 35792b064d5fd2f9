"""GPU acceptance: every method's training, validation and decoding through the real CLIs on CUDA with
--fp16 (tiny models, a few updates each), the instance heads, a masked ticket round, ALONE's kept table
and a DIP checkpoint trained on the CPU resumed on the GPU. One JSON of outcomes and numbers
(tests/gpu/conftest.py). Data and flags come from the CPU tests' builders.

    GPU_ACCEPTANCE_JSON=$OUT/gpu.json pytest -m gpu tests/gpu
"""

import math
import re

import numpy as np
import pytest
import torch

from conftest import TINY_MODEL, TOY_SPLITS, TRAIN_FLAGS, USER_DIR, count_hypotheses, run_cli
from gpu.conftest import DEVICE, DEVICE_FLAGS, ON_GPU
from fairseq_plugins.cli.dataless import model_from_flags
from fairseq_plugins.modules import pruning
from parsing_helpers import write_treebank
from test_dependency_parsing_end_to_end import FAST as PARSER_FAST, TINY as PARSER_TINY, metrics as parser_metrics
from test_dip_end_to_end import DIP, TRAIN as DIGITS_TRAIN, valid_accuracies
from test_influence_end_to_end import FAST as TURNOVER_FAST, MODEL as TURNOVER_MODEL, noisy_digits  # noqa: F401
from test_influence_sentence_prediction import sentence_data
from test_span_ner_end_to_end import TRAIN as NER_TRAIN, write_corpus as write_ner_corpus
from test_spike_lm import LM_TRAIN, grad_norm_lines, lm_bin  # noqa: F401
from test_tickets_end_to_end import DIGITS, FINETUNE

pytestmark = pytest.mark.gpu


def log_of(result):
    return result.stdout + result.stderr


def last_logged(result, name, subset="valid"):
    """The last value of metric ``name`` on ``subset`` (fairseq-train's or fairseq-validate's line)."""
    values = re.findall(rf"valid on '{subset}' subset .*?\| {name} ([\d.]+)", log_of(result))
    assert values, f"no {name} on '{subset}' in:\n{log_of(result)[-2000:]}"
    return float(values[-1])


def train(data, save_dir, *flags, cwd=None):
    return run_cli("fairseq-train", data, "--user-dir", USER_DIR, *flags, "--save-dir", save_dir,
                   "--no-epoch-checkpoints", *DEVICE_FLAGS, cwd=cwd)


def validate(data, checkpoint, *flags, cwd=None):
    return run_cli("fairseq-validate", data, "--user-dir", USER_DIR, "--path", checkpoint, "--num-workers", 0,
                   *flags, *DEVICE_FLAGS, cwd=cwd)


def reproduces(numbers, in_training, validated, tolerance, name="loss"):
    """fairseq-validate on the saved checkpoint gives the metric the last in-training validation gave
    (the same weights, in another process and batching; ``tolerance`` covers fp16 rounding)."""
    numbers[f"valid_{name}_in_training"], numbers[f"valid_{name}_fairseq_validate"] = in_training, validated
    assert validated == pytest.approx(in_training, abs=tolerance)


# --- translation: B2T, SHAPE, ALONE, relative positions, length control --------------------------------

TRANSLATION = {
    "b2t": ["--arch", "b2t_transformer"],
    "shape": ["--arch", "shape_transformer", "--shape-max-shift", "8"],
    "alone": ["--arch", "alone_transformer", "--alone-inter-dim", "256"],
    "relative": ["--arch", "relative_transformer"],
    "ldpe": ["--arch", "b2t_transformer", "--positions", "ldpe", "--length-unit", "chars"],
}
GENERATE = ["--gen-subset", "test", "--beam", 4, "--batch-size", 32, "--max-len-b", 40]
UPDATES = 200 if ON_GPU else 20  # seconds on a GPU, and the JSON's BLEU then says whether decoding works


def hypotheses(result):
    return sorted(line for line in result.stdout.splitlines() if line.startswith("H-"))


@pytest.mark.parametrize("name", TRANSLATION)
def test_translation_trains_validates_and_decodes(name, toy_bin, tmp_path, numbers):
    # two validations (no per-epoch ones): the second after more training steps (ALONE's kept table is recomputed)
    result = train(toy_bin, tmp_path, *TRAIN_FLAGS, *TRANSLATION[name], "--max-update", UPDATES,
                   "--validate-interval-updates", UPDATES // 2, "--validate-interval", 1000, "--save-interval", 1000)
    checkpoint = tmp_path / "checkpoint_last.pt"
    validated = validate(toy_bin, checkpoint, "--task", "translation", "--valid-subset", "valid", "--max-tokens", 2048)
    reproduces(numbers, last_logged(result, "loss"), last_logged(validated, "loss"), 0.01)
    task = ["--task", "length_controlled_translation", "--desired-length", 20] if name == "ldpe" else []
    decoded = run_cli("fairseq-generate", toy_bin, "--user-dir", USER_DIR, "--path", checkpoint, *GENERATE, *task,
                      *DEVICE_FLAGS)
    numbers["hypotheses"] = count_hypotheses(decoded.stdout)
    numbers["bleu"] = float(re.search(r"BLEU4? = ([\d.]+)", decoded.stdout).group(1))
    assert numbers["hypotheses"] == dict(TOY_SPLITS)["test"]
    if name == "alone":  # the kept table serves the second run exactly what the first computed
        again = run_cli("fairseq-generate", toy_bin, "--user-dir", USER_DIR, "--path", checkpoint, *GENERATE,
                        *DEVICE_FLAGS)
        assert hypotheses(again) == hypotheses(decoded)


def alone_logits(model, batch):
    with torch.no_grad():
        return model(*batch)[0]


def test_alone_kept_table_is_fresh_after_each_training_step(numbers):
    """In-process, on the device: eval outputs (kept table) equal those of a fresh copy of the weights,
    after a fused Adam step and after ``.half()``."""
    flags = ["--arch", "alone_transformer", *TINY_MODEL, "--share-all-embeddings", "--alone-inter-dim", "64"]
    torch.manual_seed(0)
    model = model_from_flags(flags, 300).to(DEVICE).eval()  # eval() once: it may free the table, hiding staleness
    batch = (torch.randint(4, 300, (2, 7), device=DEVICE), torch.tensor([7, 7], device=DEVICE),
             torch.randint(4, 300, (2, 5), device=DEVICE))

    def fresh_copy_logits(dtype):
        copy = model_from_flags(flags, 300).to(DEVICE, dtype).eval()
        copy.load_state_dict(model.state_dict())
        return alone_logits(copy, batch)

    before = alone_logits(model, batch)
    assert torch.equal(alone_logits(model, batch), before)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2, fused=True)  # writes without a version bump
    model(*batch)[0].logsumexp(-1).mean().backward()  # still in eval mode: nothing but the step touches the table
    optimizer.step()
    after_step = alone_logits(model, batch)
    numbers["max_change_after_step"] = (after_step - before).abs().max().item()
    assert numbers["max_change_after_step"] > 0
    torch.testing.assert_close(after_step, fresh_copy_logits(torch.float32), rtol=1e-4, atol=1e-4)
    if ON_GPU:  # a table kept from the fp32 weights would not be float16 (assert_close compares dtypes)
        model.half()
        torch.testing.assert_close(alone_logits(model, batch), fresh_copy_logits(torch.float16), rtol=2e-3, atol=2e-3)


# --- Spike No More: the spike-init LM with the training monitor ------------------------------------------

def test_spike_lm_trains_monitored_and_eval_lm_reproduces_it(lm_bin, tmp_path, numbers):  # noqa: F811
    result = train(lm_bin, tmp_path, "--arch", "spike_transformer_lm_tiny", *LM_TRAIN, "--lr", "1e-3",
                   "--max-update", 20, "--detect-loss-spikes", "--layer-grad-norm-interval", 10,
                   "--no-weight-decay-embeddings", "--weight-decay", 0.01)
    norms = [float(value) for line in grad_norm_lines(log_of(result), "decoder.layers") for value in line]
    numbers["layer_grad_norms_logged"] = len(norms)
    assert norms and all(math.isfinite(norm) and norm > 0 for norm in norms)  # fp16 loss scale divided out
    evaluated = run_cli("fairseq-eval-lm", lm_bin, "--user-dir", USER_DIR, "--path", tmp_path / "checkpoint_last.pt",
                        "--tokens-per-sample", 64, "--max-tokens", 1024, "--gen-subset", "valid", *DEVICE_FLAGS)
    eval_loss = float(re.search(r"Loss \(base 2\): ([\d.]+)", log_of(evaluated)).group(1))
    reproduces(numbers, last_logged(result, "loss"), eval_loss, 0.01)


# --- DIP and mixup on image classification; a DIP run resumed on the device -----------------------------

CRITERIA = {"mixup": ["--criterion", "mixup_cross_entropy", "--mixup-alpha", 0.4], "dip": DIP}
ONE_EXAMPLE = 100 / 270  # sklearn digits' validation split: one prediction flipped by fp16 rounding


@pytest.mark.parametrize("name", CRITERIA)
def test_image_criterion_trains_and_validates(name, tmp_path, numbers):
    result = run_cli("fairseq-train", *DIGITS_TRAIN, *CRITERIA[name], "--max-epoch", 1, "--save-dir", tmp_path,
                     *DEVICE_FLAGS, cwd=tmp_path)
    validated = validate(".", tmp_path / "checkpoint_last.pt", "--task", "image_classification", "--batch-size", 37,
                         cwd=tmp_path)
    reproduces(numbers, float(valid_accuracies(result)[-1]), float(valid_accuracies(validated)[-1]), ONE_EXAMPLE,
               "accuracy")


def test_dip_trained_on_cpu_resumes_on_the_device(tmp_path, numbers):
    """Epoch 1 on the CPU; epoch 2 on the device in fp32 (fairseq refuses to load an fp32 optimizer
    state into its FP16Optimizer); epoch 3 in the device's precision with --reset-optimizer."""
    def epochs(count, *flags):
        result = run_cli("fairseq-train", *DIGITS_TRAIN, *DIP, "--max-epoch", count, "--save-dir", tmp_path, *flags,
                         cwd=tmp_path)
        assert count == 1 or "Loaded checkpoint" in log_of(result) and f"epoch {count:03d}" in log_of(result)
        return result

    epochs(1, "--cpu")
    epochs(2, *([] if ON_GPU else ["--cpu"]))
    resumed = epochs(3, *DEVICE_FLAGS, "--reset-optimizer")
    validated = validate(".", tmp_path / "checkpoint_last.pt", "--task", "image_classification", "--batch-size", 37,
                         cwd=tmp_path)
    reproduces(numbers, float(valid_accuracies(resumed)[-1]), float(valid_accuracies(validated)[-1]), ONE_EXAMPLE,
               "accuracy")


# --- turn-over dropout: image and sentence classifiers, influence ---------------------------------------

def test_turnover_image_classifier_and_influence(noisy_digits, tmp_path, numbers):  # noqa: F811
    result = train(noisy_digits, tmp_path, *TURNOVER_MODEL, "--arch", "turnover_image_mlp", "--turnover-seed", 5,
                   "--criterion", "turnover_cross_entropy", "--max-epoch", 2, *TURNOVER_FAST)
    checkpoint = tmp_path / "checkpoint_best.pt"
    validated = validate(noisy_digits, checkpoint, "--task", "image_classification", "--batch-size", 64)
    reproduces(numbers, float(valid_accuracies(result)[-1]), float(valid_accuracies(validated)[-1]), ONE_EXAMPLE,
               "accuracy")
    run_cli("fairseq-plugins-influence", noisy_digits, "--user-dir", USER_DIR, "--path", checkpoint,
            "--train-subset", "train", "--valid-subset", "valid", "--out", tmp_path / "influence", "--top-k", 2,
            "--no-progress-bar")
    self_influence = np.load(tmp_path / "influence" / "self_influence.npy")
    numbers["self_influence_max"] = float(self_influence.max())
    assert np.isfinite(self_influence).all() and np.abs(self_influence).max() > 0


def test_turnover_sentence_classifier(tmp_path, numbers):
    data = sentence_data(tmp_path)
    result = train(data, tmp_path / "checkpoints", "--task", "sentence_prediction", "--num-classes", 2,
                   "--arch", "turnover_transformer_classifier", "--encoder-layers", 2, "--encoder-embed-dim", 128,
                   "--encoder-ffn-embed-dim", 256, "--encoder-attention-heads", 4, "--max-positions", 32,
                   "--criterion", "turnover_cross_entropy", "--optimizer", "adam", "--lr", "1e-3",
                   "--batch-size", 32, "--max-epoch", 2, "--num-workers", 0, "--no-progress-bar",
                   "--log-format", "simple")
    validated = validate(data, tmp_path / "checkpoints" / "checkpoint_last.pt", "--task", "sentence_prediction",
                         "--criterion", "turnover_cross_entropy", "--batch-size", 32)  # the task reads its head name
    reproduces(numbers, last_logged(result, "loss"), last_logged(validated, "loss"), 0.01)


# --- instance-based NER and dependency parsing, both heads each ------------------------------------------

@pytest.fixture(scope="module")
def ner_corpus(tmp_path_factory):
    return write_ner_corpus(tmp_path_factory.mktemp("ner") / "data")


@pytest.mark.parametrize("head", ["classifier", "instance"])
def test_span_ner_head(head, ner_corpus, tmp_path, numbers):
    result = train(ner_corpus, tmp_path, "--task", "span_ner", "--criterion", "span_ner", "--arch", "span_ner_bilstm",
                   "--span-head", head, *NER_TRAIN, "--max-update", 30)
    validated = validate(ner_corpus, tmp_path / "checkpoint_last.pt", "--task", "span_ner", "--valid-subset",
                         "valid,test", "--batch-size", 7)
    reproduces(numbers, last_logged(result, "f1"), last_logged(validated, "f1"), 0.5, "f1")
    numbers["test_f1"] = last_logged(validated, "f1", "test")
    run_cli("fairseq-plugins-ner-report", ner_corpus, "--path", tmp_path / "checkpoint_last.pt")


@pytest.fixture(scope="module")
def treebank(tmp_path_factory):
    return write_treebank(tmp_path_factory.mktemp("treebank"))


@pytest.mark.parametrize("head", ["weight", "instance"])
def test_dependency_parser_head(head, treebank, tmp_path, numbers):
    similarity = ["--similarity", "dot"] if head == "instance" else []
    result = train(treebank, tmp_path, "--task", "dependency_parsing", "--criterion", "dependency_parsing",
                   *PARSER_TINY, *PARSER_FAST, "--arc-head", head, "--label-head", head, *similarity, "--max-epoch", 2)
    validated = validate(treebank, tmp_path / "checkpoint_last.pt", "--task", "dependency_parsing",
                         "--valid-subset", "valid,test", "--batch-size", 32)
    reproduces(numbers, last_logged(result, "uas"), parser_metrics(validated, "valid")["uas"], 0.5, "uas")
    numbers.update({f"test_{name}": value for name, value in parser_metrics(validated).items()
                    if name in ("uas", "las")})


# --- multi-ticket: masked rounds under --fp16 ----------------------------------------------------------

@pytest.fixture(scope="module")
def pretrained_digits(tmp_path_factory):
    save_dir = tmp_path_factory.mktemp("pretrained")
    run_cli("fairseq-train", ".", "--user-dir", USER_DIR, *DIGITS, "--optimizer", "adam", "--lr", "1e-3",
            "--max-update", 30, "--save-dir", save_dir, *DEVICE_FLAGS)
    return save_dir / "checkpoint_last.pt"


@pytest.mark.parametrize("method, options", [("base", []), ("random", ["--tau", "1.0"])])
def test_masked_ticket_round(method, options, pretrained_digits, tmp_path, numbers):
    run_cli("fairseq-plugins-tickets", ".", "--pretrained", pretrained_digits, "--out", tmp_path, "--method", method,
            "--members", 1, "--rounds", 1, "--target-ratio", 0.2, *options, "--", *FINETUNE, *DEVICE_FLAGS)
    member = tmp_path / "member-0"
    final = torch.load(member / "checkpoint_last.pt", map_location="cpu", weights_only=False)["model"]
    masks = torch.load(member / "mask.pt", weights_only=True)
    names = pruning.prunable_names(final)
    numbers["pruned_fraction"] = sum(int((~masks[name]).sum()) for name in names) / sum(final[n].numel() for n in names)
    assert numbers["pruned_fraction"] == pytest.approx(0.2, abs=0.01)
    assert all(final[name][~masks[name]].abs().max() == 0 for name in names)  # pruned weights stayed zero
    if options:  # the diversity regulariser ran and was logged
        assert "ticket_l1" in (member / "round-1" / "train.log").read_text()
    validated = validate(".", member / "checkpoint_last.pt", "--task", "image_classification", "--data-format",
                         "sklearn_digits", "--valid-subset", "test", "--batch-size", 64)
    numbers["test_accuracy"] = last_logged(validated, "accuracy", "test")
