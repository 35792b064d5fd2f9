"""A second device on a CPU-only machine: every task's train_step and valid_step with the model
and the batch on a device other than the one a stray ``torch.tensor(...)`` lands on.

On a GPU, fairseq's trainer moves the model and each batch to CUDA; a tensor that a task or model
builds on the CPU (a collated instance batch, a ``torch.tensor(...)`` without ``device=``) then
meets CUDA tensors and the step fails, which no CPU test sees. Here the "device" is a tensor
subclass (``OnSecondDevice``) that computes on the CPU but reports ``meta`` as its device, and a
pair of modes applies CUDA's rule: an operation whose tensors are on the second device refuses a
CPU tensor of one or more dimensions (a 0-d CPU tensor is a scalar, as CUDA allows), except where
CUDA takes CPU tensors (indices, ``pack_padded_sequence``'s lengths). Factory functions given the
second device (``torch.eye(n, device=x.device)``, ``x.new_tensor(...)``, ``t.to(device)``) create
tensors there; ``.cpu()``, ``.tolist()`` and ``.item()`` come back to the CPU as on CUDA.

The tasks are built through fairseq's API (config from command-line flags, ``setup_task``,
``build_model``, ``build_criterion``, fairseq's Adam) and stepped on a few training and validation
batches; no subprocess.
"""

import pytest
import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten, tree_map

from conftest import USER_DIR
from fairseq import utils
from parsing_helpers import write_treebank

DEVICE = torch.device("meta")
# Operations whose second argument CUDA takes on the CPU (indices; pack_padded_sequence's lengths).
CPU_SECOND_ARGUMENT = {torch.ops.aten._pack_padded_sequence.default, torch.ops.aten.index.Tensor,
                       torch.ops.aten.index_put_.default, torch.ops.aten.index_put.default,
                       torch.ops.aten._index_put_impl_.default}
CREATES = (torch.tensor, torch.as_tensor, torch.Tensor.new_tensor)


class StrayTensorError(RuntimeError):
    pass


class OnSecondDevice(torch.Tensor):
    """A CPU tensor (``inner``) that reports the second device."""

    @staticmethod
    def __new__(cls, inner):
        return torch.Tensor._make_wrapper_subclass(
            cls, inner.size(), strides=inner.stride(), storage_offset=inner.storage_offset(), dtype=inner.dtype,
            layout=inner.layout, device=DEVICE, requires_grad=inner.requires_grad)

    def __init__(self, inner):
        self.inner = inner

    def __repr__(self):
        return f"OnSecondDevice({self.inner!r})"

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        return run_on_second_device(func, args, kwargs or {})


def is_second_device(device):
    return device is not None and torch.device(device).type == DEVICE.type


def run_on_second_device(func, args, kwargs):
    leaves, _ = tree_flatten((args, kwargs))
    on_device = any(isinstance(leaf, OnSecondDevice) for leaf in leaves)
    checked, _ = tree_flatten((args[:1], args[2:], kwargs) if func in CPU_SECOND_ARGUMENT else (args, kwargs))
    strays = [leaf for leaf in checked if type(leaf) is torch.Tensor and leaf.dim() > 0]
    if on_device and strays and func is not torch.ops.aten.copy_.default:  # copy_: from one device to another
        raise StrayTensorError(f"{func}: a CPU tensor of shape {tuple(strays[0].shape)} meets tensors on the second device")
    args, kwargs = tree_map(lambda x: x.inner if isinstance(x, OnSecondDevice) else x, (args, kwargs))
    if kwargs.get("device") is not None:
        to_device = is_second_device(kwargs["device"])
        if to_device:
            kwargs["device"] = torch.device("cpu")
    else:
        to_device = on_device
    out = func(*args, **kwargs)
    if func is torch.ops.aten._pack_padded_sequence.default:  # batch sizes stay on the CPU (as on CUDA)
        return OnSecondDevice(out[0]), out[1]
    return tree_map(lambda x: OnSecondDevice(x) if to_device and type(x) is torch.Tensor else x, out)


class SecondDeviceOps(TorchDispatchMode):
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        return run_on_second_device(func, args, kwargs or {})


class SecondDeviceFunctions(TorchFunctionMode):
    """What happens above aten: tensors built from Python data, and ``tolist``."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is torch.Tensor.tolist and isinstance(args[0], OnSecondDevice):
            return args[0].inner.tolist()
        if func in CREATES:
            device = kwargs.get("device", args[0].device if func is torch.Tensor.new_tensor else None)
            if is_second_device(device):
                args = tree_map(lambda x: x.inner if isinstance(x, OnSecondDevice) else x, args)
                return func(*args, **{**kwargs, "device": "cpu"}).to(DEVICE)
        return func(*args, **kwargs)


class second_device:
    """``with second_device():`` every operation inside follows the second device's rules;
    ``torch.autocast`` on it is the CPU's (autocast knows no meta device)."""

    def __enter__(self):
        self.modes = [SecondDeviceFunctions(), SecondDeviceOps()]
        for mode in self.modes:
            mode.__enter__()
        self.autocast = torch.autocast
        torch.autocast = lambda device_type, *args, **kwargs: self.autocast(
            "cpu" if device_type == DEVICE.type else device_type, *args, **kwargs)

    def __exit__(self, *exc):
        torch.autocast = self.autocast
        for mode in reversed(self.modes):
            mode.__exit__(*exc)


def move_module(module):
    """Parameters and buffers onto the second device (in place; call inside ``second_device()``)."""
    for submodule in module.modules():
        for name, param in list(submodule._parameters.items()):
            if param is not None:  # setattr keeps an LSTM's flat weight list in step
                setattr(submodule, name, nn.Parameter(OnSecondDevice(param.detach()), param.requires_grad))
        for name, buffer in list(submodule._buffers.items()):
            if buffer is not None:
                submodule._buffers[name] = OnSecondDevice(buffer)
    return module


def move_sample(sample):
    """What fairseq's trainer does with each batch (``utils.move_to_cuda``)."""
    return utils.apply_to_sample(lambda tensor: tensor.to(DEVICE), sample)


def test_the_device_refuses_stray_cpu_tensors_as_cuda_does():
    with second_device():
        layer = move_module(nn.Linear(4, 2))
        x = torch.randn(3, 4).to(DEVICE)
        assert x.device == DEVICE and isinstance(layer(x), OnSecondDevice)
        (layer(x) * torch.tensor(2.0)).sum().backward()  # a 0-d CPU tensor is a scalar
        assert isinstance(layer.weight.grad, OnSecondDevice)
        assert isinstance(torch.eye(3, device=x.device), OnSecondDevice)
        assert isinstance(torch.tensor([1, 2], device=x.device), OnSecondDevice)
        assert x[torch.tensor([0, 2])].shape == (2, 4)  # CPU indices, as CUDA takes them
        with pytest.raises(StrayTensorError, match="aten.index_put"):
            x[torch.tensor([0, 2])] = torch.zeros(2, 4)  # but not CPU values
        x[0:2] = torch.zeros(2, 4)  # a copy from the CPU
        assert x.cpu()[:2].eq(0).all()
        assert x.cpu().device.type == "cpu" and len(x.tolist()) == 3
        with pytest.raises(StrayTensorError, match="aten.add"):
            x + torch.ones(4)
        with pytest.raises(StrayTensorError, match="aten.embedding"):
            move_module(nn.Embedding(5, 4))(torch.tensor([1, 2]))
        with pytest.raises(StrayTensorError):
            torch.cat([x, torch.zeros(1, 4)])


# --- tasks -----------------------------------------------------------------------------------


def build(data, *flags):
    """``(cfg, task, model, criterion)`` as fairseq-train builds them from these flags."""
    from fairseq import tasks
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf
    from fairseq.options import get_training_parser, parse_args_and_arch

    args = parse_args_and_arch(get_training_parser(), [str(data), "--user-dir", USER_DIR, "--seed", "1",
                                                       "--optimizer", "adam", "--lr", "1e-3", *map(str, flags)])
    cfg = convert_namespace_to_omegaconf(args)
    utils.set_torch_seed(1)
    task = tasks.setup_task(cfg.task)
    return cfg, task, task.build_model(cfg.model), task.build_criterion(cfg.criterion)


def batches(task, split, count, size):
    task.load_dataset(split)
    dataset = task.dataset(split)
    return [dataset.collater([dataset[i] for i in range(start, start + size)]) for start in range(0, count * size, size)]


def step_on_second_device(data, *flags, size=4):
    """Two training steps and two validation steps on the second device; the logging outputs."""
    from fairseq import optim

    cfg, task, model, criterion = build(data, *flags)
    train, valid = batches(task, "train", 2, size), batches(task, "valid", 2, size)
    outputs = []
    with second_device():
        move_module(model)
        move_module(criterion)
        optimizer = optim.build_optimizer(cfg.optimizer, [p for p in model.parameters() if p.requires_grad])
        for update, sample in enumerate(train, start=1):
            model.train()
            loss, _, output = task.train_step(move_sample(sample), model, criterion, optimizer, update)
            task.optimizer_step(optimizer, model, update)
            optimizer.zero_grad()
            assert isinstance(loss, OnSecondDevice) and torch.isfinite(loss.cpu())
            outputs.append(output)
        model.eval()
        with torch.no_grad():
            for sample in valid:
                outputs.append(task.valid_step(move_sample(sample), model, criterion)[2])
    return outputs


@pytest.fixture(scope="module")
def treebank(tmp_path_factory):
    return write_treebank(tmp_path_factory.mktemp("treebank"), sizes=(("train", 40), ("valid", 8)))


PARSER = ["--task", "dependency_parsing", "--criterion", "dependency_parsing", "--arch", "dependency_parser_bilstm",
          "--encoder-embed-dim", 16, "--encoder-hidden-dim", 16, "--mlp-dim", 16, "--edge-dim", 16,
          "--instance-sentences", 8]


@pytest.mark.parametrize("heads", [
    ["--arc-head", "instance", "--label-head", "instance", "--similarity", "cosine"],
    ["--arc-head", "instance", "--label-head", "weight", "--similarity", "dot"],
    ["--arc-head", "weight", "--label-head", "weight"],
    ["--arc-head", "weight", "--label-head", "instance", "--arch", "dependency_parser_transformer",
     "--encoder-embed-dim", 16, "--encoder-attention-heads", 2],
])
def test_dependency_parsing(treebank, heads):
    outputs = step_on_second_device(treebank, *PARSER, *heads)
    assert sum(output["sentences"] for output in outputs[2:]) == 8


@pytest.mark.parametrize("data, flags", [
    ("treebank", PARSER + ["--arc-head", "instance", "--label-head", "instance"]),
    ("ner_corpus", ["--task", "span_ner", "--criterion", "span_ner", "--arch", "span_ner_bilstm", "--span-dim", 16,
                    "--encoder-embed-dim", 16, "--encoder-hidden-dim", 16, "--max-span-length", 3]),
])
def test_explanations(request, data, flags):
    _, task, model, _ = build(request.getfixturevalue(data), *flags)
    dataset = task.load_dataset("valid")
    with second_device():
        report = task.explain(move_module(model).eval(), dataset, top_k=2)
    summary = report["summary"]  # (an untrained tagger predicts no entity: only the parser's have neighbours)
    assert summary.get("training_edges", summary.get("memory_spans")) > 0
    assert all(len(p.get("top", p.get("neighbours"))) == 2 for p in report["predictions"])


NER = ["--task", "span_ner", "--criterion", "span_ner", "--encoder-embed-dim", 16, "--encoder-hidden-dim", 16,
       "--span-dim", 16, "--max-span-length", 3, "--instance-sentences", 8]


@pytest.fixture(scope="module")
def ner_corpus(tmp_path_factory):
    from test_span_ner_end_to_end import write_corpus

    return write_corpus(tmp_path_factory.mktemp("ner"), (("train", 40, "iob2"), ("valid", 8, "iob2")))


@pytest.mark.parametrize("model", [
    ["--arch", "span_ner_bilstm", "--span-head", "instance"],
    ["--arch", "span_ner_bilstm", "--span-head", "classifier"],
    ["--arch", "span_ner_transformer", "--span-head", "instance", "--similarity", "cosine", "--encoder-embed-dim", 16,
     "--encoder-attention-heads", 2],
])
def test_span_ner(ner_corpus, model):
    outputs = step_on_second_device(ner_corpus, *NER, *model)
    assert sum(output["ner_gold"] for output in outputs[2:]) > 0


DIGITS = ["--task", "image_classification", "--data-format", "sklearn_digits", "--hidden-dim", 16]


@pytest.mark.parametrize("flags", [
    ["--arch", "image_mlp", "--criterion", "classification_cross_entropy"],
    ["--arch", "image_cnn", "--conv-channels", "4,4", "--criterion", "cross_entropy"],
    ["--arch", "image_mlp", "--criterion", "mixup_cross_entropy", "--mixup-alpha", 0.4],
    ["--arch", "image_mlp", "--criterion", "dip_cross_entropy", "--dip-pool-size", 20, "--dip-train-samples", 2,
     "--dip-eval-samples", 2],
    ["--arch", "turnover_image_mlp", "--criterion", "turnover_cross_entropy"],
    ["--arch", "image_mlp", "--criterion", "cross_entropy", "--task", "ticket_image_classification",
     "--ticket-random-penalty", 0.5, "--ticket-tau", 0.1],
])
def test_image_classification(flags):
    outputs = step_on_second_device(".", *DIGITS, *flags)
    assert all(output["nsentences"] == 4 for output in outputs)


TRANSLATION = ["--task", "translation", "--arch", "composable_transformer", "--encoder-layers", 1, "--decoder-layers", 1,
               "--encoder-embed-dim", 16, "--decoder-embed-dim", 16, "--encoder-ffn-embed-dim", 32,
               "--decoder-ffn-embed-dim", 32, "--encoder-attention-heads", 2, "--decoder-attention-heads", 2,
               "--share-all-embeddings", "--criterion", "label_smoothed_cross_entropy", "--label-smoothing", 0.1]


@pytest.mark.parametrize("flags", [
    ["--decoder-residual", "b2t", "--positions", "shape", "--embeddings", "alone"],
    ["--positions", "relative", "--init-scheme", "small", "--embed-treatment", "scaled"],
    ["--task", "length_controlled_translation", "--positions", "lrpe"],
    ["--task", "monitored_translation", "--detect-loss-spikes", "--skip-spike-updates"],
    ["--task", "ticket_translation", "--ticket-random-penalty", 0.5, "--ticket-tau", 0.1],
])
def test_translation(toy_bin, flags):
    outputs = step_on_second_device(toy_bin, *TRANSLATION, *flags)
    assert all(output["nsentences"] == 4 for output in outputs)


@pytest.fixture(scope="module")
def lm_bin(toy_raw, tmp_path_factory):
    from conftest import run_cli

    dest = tmp_path_factory.mktemp("lm-bin")
    run_cli("fairseq-preprocess", "--only-source", "--trainpref", f"{toy_raw}/train.xx", "--validpref",
            f"{toy_raw}/valid.xx", "--destdir", dest, "--workers", 1)
    return str(dest)


def test_language_modeling(lm_bin):
    outputs = step_on_second_device(lm_bin, "--task", "monitored_language_modeling", "--arch", "spike_transformer_lm_tiny",
                                    "--tokens-per-sample", 32, "--detect-loss-spikes", "--layer-grad-norm-interval", 1)
    assert all(output["nsentences"] == 4 for output in outputs)


@pytest.fixture(scope="module")
def sentiment_bin(tmp_path_factory):
    import random

    from conftest import run_cli
    from test_dip_sentence_prediction import write_sentiment

    raw, out = tmp_path_factory.mktemp("sentiment-raw"), tmp_path_factory.mktemp("sentiment-bin")
    rng = random.Random(0)
    for split in ("train", "valid"):
        (raw / split).mkdir()
        write_sentiment(raw / split, 16, rng)
    for field in ("input0", "label"):
        run_cli("fairseq-preprocess", "--only-source", "--trainpref", raw / "train" / field,
                "--validpref", raw / "valid" / field, "--destdir", out / field, "--workers", 1)
    return str(out)


@pytest.mark.parametrize("flags", [
    ["--arch", "transformer_classifier", "--criterion", "sentence_prediction"],
    ["--arch", "transformer_classifier", "--criterion", "dip_cross_entropy", "--dip-pool-size", 8,
     "--dip-train-samples", 2, "--dip-eval-samples", 2],
    ["--arch", "turnover_transformer_classifier", "--criterion", "turnover_cross_entropy"],
    ["--arch", "transformer_classifier", "--criterion", "sentence_prediction", "--task", "ticket_sentence_prediction",
     "--ticket-random-penalty", 0.5, "--ticket-tau", 0.1],
])
def test_sentence_prediction(sentiment_bin, flags):
    outputs = step_on_second_device(sentiment_bin, "--task", "sentence_prediction", "--num-classes", 2,
                                    "--max-positions", 64, "--encoder-layers", 1, "--encoder-embed-dim", 16,
                                    "--encoder-ffn-embed-dim", 32, "--encoder-attention-heads", 2, *flags)
    assert all(output["nsentences"] == 4 for output in outputs)
