"""The seams new methods plug into: options declared once and flowing one way, import-only
packages, one output convention for classifiers, per-token features, checkpoint helpers."""

import argparse
import dataclasses
import re
import subprocess
import sys

import pytest
import torch

from conftest import TINY_MODEL
from fairseq_plugins.cli.average_checkpoints import average_checkpoints
from fairseq_plugins.cli.checkpoints import load_checkpoint
from fairseq_plugins.cli.dataless import dummy_dictionary, model_from_flags
from fairseq_plugins.errors import ConfigError
from fairseq_plugins.models.transformer_options import (
    ComposableTransformerOptions,
    option_defaults,
    validate_options,
)
from fairseq_plugins.options import bounded_field, check_options, choices_of


def test_every_choice_is_declared_once_and_read_by_help_and_error():
    choices = choices_of(ComposableTransformerOptions)
    assert {"encoder_residual", "positions", "embeddings", "alone_filter", "init_scheme", "embed_treatment"} <= set(choices)
    fields = {f.name: f for f in dataclasses.fields(ComposableTransformerOptions)}
    for name, allowed in choices.items():
        assert all(choice in fields[name].metadata["help"] for choice in allowed), name
        args = argparse.Namespace()
        option_defaults(args)
        setattr(args, name, "no-such-choice")
        flag = "--" + name.replace("_", "-")
        with pytest.raises(ConfigError, match="^" + re.escape(f"{flag} must be one of {', '.join(allowed)} (got 'no-such-choice')") + "$"):
            validate_options(args)


@pytest.mark.parametrize("legacy, option, value", [
    ("--encoder-normalize-before", "encoder_residual", "pre_ln"),
    ("--decoder-learned-pos", "positions", "learned"),
    ("--no-scale-embedding", "embed_treatment", "vanilla"),
])
def test_fairseq_flags_set_the_default_of_our_option(legacy, option, value):
    from fairseq import options

    from fairseq_plugins.cli.dataless import NO_DATA

    args = options.parse_args_and_arch(options.get_training_parser(), [NO_DATA, "--arch", "composable_transformer", legacy])
    assert getattr(args, option) == value


def test_building_does_not_write_fairseq_flags_back():
    """Options flow one way: the saved configuration keeps what the user gave."""
    from fairseq import options

    from fairseq_plugins.cli.dataless import NO_DATA, build_model

    args = options.parse_args_and_arch(
        options.get_training_parser(),
        [NO_DATA, "--arch", "b2t_transformer", *TINY_MODEL, "--decoder-residual", "pre_ln", "--positions", "learned"],
    )
    model = build_model(args, 50)
    assert model.decoder.layer_norm is not None and model.encoder.layer_norm is None  # Pre-LN decoder only
    assert hasattr(model.decoder.embed_positions, "weight")  # learned positions
    assert (args.decoder_normalize_before, args.decoder_learned_pos) == (False, False)
    assert (args.encoder_residual, args.decoder_residual) == ("b2t", "pre_ln")


def test_importing_the_package_leaves_the_excepthook_alone():
    code = "import sys, fairseq_plugins; print(sys.excepthook is sys.__excepthook__)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "True"


def test_optimizer_param_groups_are_installed_by_compat():
    from fairseq import optim

    import fairseq_plugins  # noqa: F401

    assert getattr(optim.build_optimizer, "builds_param_groups", False)


def classifiers():
    from fairseq_plugins.models.image_classifiers import ImageClassifier, ImageClassifierConfig
    from fairseq_plugins.models.transformer_classifier import TransformerClassifier, TransformerClassifierConfig

    torch.manual_seed(0)
    text = TransformerClassifier(TransformerClassifierConfig(encoder_embed_dim=32, encoder_ffn_embed_dim=64),
                                 dummy_dictionary(30))
    text.register_classification_head("head", num_classes=3)
    image = ImageClassifier(ImageClassifierConfig(hidden_dim=16), (1, 8, 8), 10)
    return {"text": (text.eval(), {"src_tokens": torch.randint(4, 30, (2, 5))}, 3),
            "image": (image.eval(), {"images": torch.rand(2, 1, 8, 8)}, 10)}


@pytest.mark.parametrize("kind", ["text", "image"])
def test_classifiers_return_logits_and_extra(kind):
    model, net_input, classes = classifiers()[kind]
    logits, extra = model(**net_input)
    assert logits.shape == (2, classes) and extra is None
    torch.testing.assert_close(model.get_normalized_probs((logits, extra), log_probs=True), logits.log_softmax(-1))


def test_transformer_classifier_features_are_per_token():
    model, net_input, _ = classifiers()["text"]
    tokens = net_input["src_tokens"].clone()
    tokens[1, 3:] = 1  # padding
    states, padding = model.features(tokens)
    assert states.shape == (2, 5, 32) and torch.equal(padding, tokens.eq(1))
    assert states[1, 3:].abs().sum() == 0 and states[1, :3].abs().sum() > 0


def test_transformer_classifier_loads_the_state_dict_layout_before_its_encoder_module():
    model, net_input, _ = classifiers()["text"]
    old_layout = {key.removeprefix("encoder."): value for key, value in model.state_dict().items()}
    assert "embed_tokens.weight" in old_layout
    fresh = classifiers()["text"][0]
    torch.nn.init.zeros_(fresh.encoder.embed_tokens.weight)
    fresh.upgrade_state_dict(old_layout)
    fresh.load_state_dict(old_layout)
    torch.testing.assert_close(fresh(**net_input)[0], model(**net_input)[0])


def test_average_refuses_non_float_tensors_that_differ(tmp_path):
    paths = []
    for i, filters in enumerate(([1, 0, 1], [1, 0, 1], [0, 1, 1])):
        path = tmp_path / f"c{i}.pt"
        torch.save({"model": {"w": torch.full((2,), float(i)), "filters": torch.tensor(filters)}}, path)
        paths.append(str(path))
    averaged = average_checkpoints(paths[:2])["model"]
    assert torch.equal(averaged["w"], torch.full((2,), 0.5)) and torch.equal(averaged["filters"], torch.tensor([1, 0, 1]))
    with pytest.raises(ConfigError, match="differ in filters"):
        average_checkpoints(paths)


@pytest.mark.parametrize("content", [None, b"not a checkpoint at all"])
def test_checkpoint_helper_errors_name_the_file(tmp_path, content):
    path = tmp_path / "model.pt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigError, match=f"^--path {path}: (no such checkpoint file|not a checkpoint)"):
        load_checkpoint(str(path))


def registered_architectures():
    import fairseq_plugins  # noqa: F401
    from fairseq.models import ARCH_MODEL_REGISTRY

    ours = []
    for arch, model_class in sorted(ARCH_MODEL_REGISTRY.items()):
        if model_class.__module__.startswith("fairseq_plugins.models.composable_transformer"):
            if not arch.endswith(("_350m", "_1_7b", "_big")):  # too large to build in a test
                ours.append(arch)
    return ours


@pytest.mark.parametrize("arch", registered_architectures())
def test_every_transformer_preset_builds_through_the_namespace_api(arch):
    """Scripts and hub-style loading build from ``options.parse_args_and_arch`` + ``task.build_model(args)``."""
    from fairseq import options

    from fairseq_plugins.cli.dataless import NO_DATA, TASKS

    task = "language_modeling" if "_lm" in arch else "translation"
    small = (["--decoder-layers", "2", "--decoder-embed-dim", "64", "--decoder-ffn-embed-dim", "64",
              "--decoder-attention-heads", "2"] if task == "language_modeling" else
             [*TINY_MODEL, "--encoder-ffn-embed-dim", "64", "--decoder-ffn-embed-dim", "64"])
    if arch.startswith("alone"):
        small += ["--alone-inter-dim", "64"]
    parser = options.get_training_parser()
    args = options.parse_args_and_arch(parser, [NO_DATA, "--task", task, "--arch", arch, *small])
    model = TASKS[task](args, dummy_dictionary(40)).build_model(args)
    assert sum(p.numel() for p in model.parameters()) > 0
    assert model_from_flags(["--arch", arch, *small], 40, task=task) is not None  # the dataclass path


@pytest.mark.parametrize("bounds, inside, outside", [
    (">= 1", [1, 7], [0, -1]),
    ("> 0", [1e-9, 3.0], [0.0, -2.0]),
    ("[0, 1)", [0.0, 0.5], [1.0, -0.1]),
    ("(0, 1]", [1.0, 0.25], [0.0, 1.5]),
])
def test_bounded_fields_accept_their_range_and_refuse_the_rest_in_one_phrasing(bounds, inside, outside):
    config = dataclasses.make_dataclass("Config", [("some_size", float, bounded_field(inside[0], bounds, "a size"))])
    for value in inside:
        check_options(config(some_size=value), config)
    for value in outside:
        expected = bounds if bounds[0] in "<>" else f"in {bounds}"
        with pytest.raises(ConfigError, match=re.escape(f"--some-size must be {expected} (got {value!r})")):
            check_options(config(some_size=value), config)
