"""recipes/multi_ticket in SMALL=1 mode, end to end at its smallest: the Debian package sections, a tiny
RoBERTa pretrained with fairseq's masked_lm task, dense and RANDOM-LT members through
fairseq-plugins-tickets on fairseq's sentence_prediction task, the ensemble report and its table."""

import json
import os

import pytest
import torch

from recipe_helpers import error_line, run_recipe
from test_tickets_end_to_end import accuracies_of_members_and_mean_probability

pytestmark = pytest.mark.slow


def test_train_before_prepare_is_one_line(tmp_path):
    result = run_recipe("multi_ticket/train.sh", {"SMALL": "1", "WORK_DIR": str(tmp_path)}, args=("dense", "1"), check=False)
    assert "run prepare.sh first" in error_line(result)


@pytest.mark.skipif(not os.path.isfile("/var/lib/dpkg/status"), reason="needs a Debian package database")
def test_small_mode_end_to_end(tmp_path):
    work, results = tmp_path / "work", tmp_path / "results"
    env = {"SMALL": "1", "WORK_DIR": str(work), "RESULTS_DIR": str(results), "MEMBERS": "2", "SEED_GROUPS": "1",
           "METHODS": "dense random", "PRETRAIN_UPDATES": "40", "EPOCHS": "1",
           "OMP_NUM_THREADS": "1"}
    result = run_recipe("multi_ticket/run.sh", env)
    assert "| BASELINE (dense) | 2 x 1 |" in result.stdout and "| RANDOM-LT | 2 x 1 |" in result.stdout
    report = json.loads((results / "results.json").read_text())["tasks"]["sections"]
    for method in ("dense", "random"):
        members = [work / "members" / "sections" / f"{method}-seed1" / f"member-{i}" / "checkpoint_last.pt" for i in range(2)]
        singles, ensemble = accuracies_of_members_and_mean_probability(
            members, work / "data-bin" / "sections", "test", head="sentence_classification_head")
        summary = report[method]["protocol"]  # one seed group of two: its one ensemble
        assert summary["mean_single"] == pytest.approx(sum(singles) / 2) and summary["ensemble"] == pytest.approx(ensemble)
        assert report[method]["all_members"]["ensemble"] == pytest.approx(ensemble)
        assert report[method]["time_vs_dense"] is not None
    assert report["dense"]["all_members"]["mask_iou"] is None and 0 < report["random"]["all_members"]["mask_iou"] < 1
    # a RANDOM-LT member of the tiny RoBERTa: 30% of the prunable weights (head's dense layer included) are 0
    member = work / "members" / "sections" / "random-seed1" / "member-0"
    mask = torch.load(member / "mask.pt", weights_only=True)
    assert "classification_heads.sentence_classification_head.dense.weight" in mask
    model = torch.load(member / "checkpoint_last.pt", weights_only=False)["model"]
    zeros = sum(int((model[name] == 0).sum()) for name in mask)
    assert abs(zeros - 0.3 * sum(m.numel() for m in mask.values())) <= 1
    # the ticket's finetune started from the pretrained body and the head's initial values, rewound under its mask
    init = torch.load(member / "init.pt", weights_only=True)
    start = torch.load(member / "start.pt", weights_only=False)["model"]
    pretrained = torch.load(work / "pretrained" / "model.pt", weights_only=False)["model"]
    head = "classification_heads.sentence_classification_head.out_proj.weight"
    assert torch.equal(start[head], init[head]) and head not in pretrained
    for name, value in init.items():
        expected = torch.where(mask[name], value, torch.zeros_like(value)) if name in mask else value
        assert torch.equal(start[name], expected), name
        if name in pretrained:
            assert torch.equal(value, pretrained[name]), name
    # a re-run trains nothing again
    again = run_recipe("multi_ticket/train.sh", env, args=("random", "1"))
    assert "fairseq-train " not in again.stderr and again.stdout.count("skip member-") == 2
