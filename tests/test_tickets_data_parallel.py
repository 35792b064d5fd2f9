"""Lottery tickets under data parallelism: the trainer hands the task its model inside fairseq's wrappers
(``ModuleProxyWrapper(DistributedDataParallel(model))``, names prefixed ``module.module.``); the ticket
and monitor hooks must read the model's own names.

Two gloo workers on CPU (fairseq-plugins-tickets, RANDOM-LT, one pruning round, then the masked
ticket) against one process with ``--update-freq 2``, which sees the same batches per update. Only
rank 0 writes checkpoints and logs, so rank 1 is checked through what it sends: its gradients are
averaged into every update, so a rank 1 that penalised other weights, or let a pruned weight move
(its forward then differs), would make rank 0's weights differ from the one-process run.
"""

import re
from argparse import Namespace

import pytest
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from fairseq.distributed import ModuleProxyWrapper

from test_tickets_end_to_end import FINETUNE, load, pretrained, tickets  # noqa: F401  (pretrained: a fixture)
from test_data_parallel import assert_same_weights
from fairseq_plugins.modules import pruning
from fairseq_plugins.tasks.ticket_training import TicketConfig, TicketTrainingMixin
from fairseq_plugins.tasks.task_extension import unwrapped_model
from fairseq_plugins.tasks.training_monitor import TrainingMonitorConfig, TrainingMonitorMixin


def ticket_l1_by_update(log):
    return re.findall(r"train_inner \|.* ticket_l1=([\d.]+),.* num_updates=(\d+),", log)


@pytest.mark.slow
def test_two_workers_build_the_ticket_one_process_builds(pretrained, tmp_path):  # noqa: F811
    """Before the fix, the masked round stopped with "the model has no parameter encoder.1.weight" and
    round 1 trained without the regulariser (no ticket_l1)."""
    options = ["--rounds", 1, "--tau", 1.0]
    tickets(pretrained, tmp_path / "one", "random", 1, *options,
            fairseq_options=FINETUNE + ["--cpu", "--log-interval", 1, "--update-freq", 2])
    result = tickets(pretrained, tmp_path / "two", "random", 1, *options,
                     fairseq_options=FINETUNE + ["--cpu", "--log-interval", 1, "--distributed-world-size", 2])
    assert "fairseq-train " in result.stderr
    one, two = tmp_path / "one" / "member-0", tmp_path / "two" / "member-0"
    logs = {}
    for member in (one, two):
        for run in ("round-1", ""):
            with open(member / run / "train.log") as file:
                logs[member, run] = file.read()
    assert "training on 2 devices" in logs[two, "round-1"] and "training on 2 devices" in logs[two, ""]
    # the regulariser covers the same weights (every prunable weight's l) as one process: same ||theta * l||_1
    penalised = ticket_l1_by_update(logs[two, "round-1"])
    assert len(penalised) == 8 and penalised == ticket_l1_by_update(logs[one, "round-1"])
    # same mask, pruning exactly 30% of the prunable weights, held at 0 through the ticket's finetune
    mask = torch.load(two / "mask.pt", weights_only=True)
    assert all(torch.equal(m, torch.load(one / "mask.pt", weights_only=True)[name]) for name, m in mask.items())
    final = load(two / "checkpoint_last.pt")["model"]
    pruned, total = pruning.count(mask)
    assert pruned == round(0.3 * total)
    assert sum(int((final[name] == 0).sum()) for name in mask) == pruned
    assert all(torch.equal(final[name] == 0, ~m) for name, m in mask.items())
    assert_same_weights(one / "checkpoint_last.pt", two / "checkpoint_last.pt")


class StandInTask:
    def __init__(self, cfg):
        self.cfg = cfg

    def train_step(self, sample, model, criterion, optimizer, update_num, ignore_grad=False):
        return torch.zeros(()), 1, {}


@pytest.fixture
def wrapped(tmp_path):
    """A model as fairseq's trainer hands it to tasks under --ddp-backend pytorch_ddp (one gloo rank)."""
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'group'}", rank=0, world_size=1)
    model = torch.nn.Module()
    model.encoder = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 4))
    model.layers = torch.nn.ModuleList([torch.nn.Linear(4, 4)])
    try:
        yield model, ModuleProxyWrapper(DistributedDataParallel(model))
    finally:
        dist.destroy_process_group()


def test_hooks_read_the_model_inside_fairseqs_data_parallel_wrappers(wrapped, tmp_path, caplog):
    model, wrapper = wrapped
    assert next(iter(dict(wrapper.named_parameters()))).startswith("module.module.")
    assert unwrapped_model(wrapper) is model

    torch.save({"encoder.1.weight": torch.tensor([[True, False] * 2] * 4)}, tmp_path / "mask.pt")
    cfg = TicketConfig(ticket_mask=str(tmp_path / "mask.pt"), ticket_random_penalty=0.5, ticket_tau=1.0)
    tickets_task = type("Tickets", (TicketTrainingMixin, StandInTask), {})(cfg)
    tickets_task._ticket_setup(wrapper, torch.optim.SGD(model.parameters(), lr=0.1))
    assert list(tickets_task._penalty) == ["encoder.1.weight"]  # RANDOM-LT's l over the prunable set
    assert not model.encoder[1].weight[:, 1::2].any()

    cfg = Namespace(**{**vars(TrainingMonitorConfig()), "layer_grad_norm_interval": 1})
    monitor = type("Monitored", (TrainingMonitorMixin, StandInTask), {})(cfg)
    monitor._monitor_setup()
    model.layers[0].weight.grad = torch.ones(4, 4)
    with caplog.at_level("INFO", logger="fairseq_plugins.tasks.training_monitor"):
        monitor._log_layer_grad_norms(wrapper, torch.optim.SGD(model.parameters(), lr=0.1), 1)
    assert re.search(r"\| update 1 \| layers \| 4$", caplog.text, re.M), caplog.text  # not module.module.layers
