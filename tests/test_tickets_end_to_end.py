"""Multi-ticket ensembles through the real CLIs: fairseq-plugins-tickets (which runs fairseq-train),
fairseq-validate on a ticket, fairseq-plugins-ensemble, fairseq-generate ensembling two seq2seq tickets.

Tiny models on sklearn digits (image_mlp) and the synthetic translation corpus.
"""

import json
import os
import re
import shutil

import numpy as np
import pytest
import torch

from conftest import TINY_MODEL, USER_DIR, count_hypotheses, one_line_error, run_cli
from fairseq_plugins.cli import ensemble
from fairseq_plugins.cli import tickets as tickets_cli
from fairseq_plugins.errors import ConfigError
from fairseq_plugins.modules import pruning

DIGITS = ["--task", "image_classification", "--data-format", "sklearn_digits", "--arch", "image_mlp",
          "--hidden-dim", 32, "--criterion", "cross_entropy", "--batch-size", 64, "--num-workers", 0,
          "--no-progress-bar", "--log-format", "simple", "--no-epoch-checkpoints"]
# finetuning: Adam with decoupled weight decay, the two things that resurrect pruned weights in naive code
FINETUNE = DIGITS + ["--optimizer", "adam", "--lr", "2e-3", "--weight-decay", "0.1", "--max-update", 8]


def load(path):
    return torch.load(path, map_location="cpu", weights_only=False)


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    save_dir = tmp_path_factory.mktemp("pretrained")
    run_cli("fairseq-train", ".", "--user-dir", USER_DIR, *DIGITS, "--optimizer", "adam", "--lr", "1e-3",
            "--max-update", 30, "--save-dir", save_dir)
    return str(save_dir / "checkpoint_last.pt")


def tickets(pretrained, out, method, members, *options, fairseq_options=FINETUNE):
    return run_cli("fairseq-plugins-tickets", ".", "--pretrained", pretrained, "--out", out, "--method", method,
                   "--members", members, *options, "--", *fairseq_options)


@pytest.fixture(scope="module")
def base_tickets(pretrained, tmp_path_factory):
    out = tmp_path_factory.mktemp("base")
    result = tickets(pretrained, out, "base", 1)
    return str(out), result


def accuracies_of_members_and_mean_probability(paths, data, subset, head=None):
    """Each member's accuracy and that of their mean softmax on ``subset``, through fairseq's own loader and
    each model's forward (``head``: a RoBERTa classification head): what fairseq-plugins-ensemble must report."""
    from fairseq import checkpoint_utils

    probabilities = []
    for path in paths:
        [model], _, task = checkpoint_utils.load_model_ensemble_and_task([str(path)], arg_overrides={"data": str(data)})
        task.load_dataset(subset)
        dataset = task.dataset(subset)
        sample = dataset.collater([dataset[i] for i in range(len(dataset))])
        head_options = {"features_only": True, "classification_head_name": head} if head else {}
        with torch.no_grad():
            probabilities.append(model.eval()(**sample["net_input"], **head_options)[0].float().softmax(-1))
    target = sample["target"].view(-1)

    def accuracy(probability):
        return 100 * (probability.argmax(-1) == target).double().mean().item()
    return [accuracy(p) for p in probabilities], accuracy(torch.stack(probabilities).mean(0))


def last_logged_lr(log):
    with open(log) as file:
        values = re.findall(r"\| train \| .*\| lr ([^ |]+) ", file.read())
    return float(values[-1])


def test_three_rounds_prune_thirty_percent_and_finetuning_keeps_them_zero(pretrained, base_tickets):
    out, result = base_tickets
    assert result.stderr.count("fairseq-train ") == 4  # 3 rounds + the ticket's finetune, each printed
    initial = load(pretrained)["model"]
    names = pruning.prunable_names(initial)
    assert names == ["encoder.1.weight", "encoder.4.weight"]  # hidden layers, not the output layer
    total = sum(initial[name].numel() for name in names)
    for member in ("member-0",):
        final = load(os.path.join(out, member, "checkpoint_last.pt"))["model"]
        mask = torch.load(os.path.join(out, member, "mask.pt"), weights_only=True)
        zeros = sum(int((final[name] == 0).sum()) for name in names)
        assert abs(zeros - 0.3 * total) <= 1
        # exactly the masked weights are zero after 8 Adam updates with weight decay 0.1
        for name in names:
            assert torch.equal(final[name] == 0, ~mask[name])
        assert all((final[name] != 0).all() for name in final if name not in names and final[name].numel())
        assert not torch.equal(final["encoder.1.weight"], torch.load(os.path.join(out, member, "start.pt"),
                                                                     weights_only=False)["model"]["encoder.1.weight"])


def test_rewinding_restores_pretrained_values_bit_for_bit(pretrained, base_tickets):
    out, _ = base_tickets
    initial = load(pretrained)["model"]
    rewound = load(os.path.join(out, "member-0", "start.pt"))["model"]  # where the ticket's own finetune starts
    masks = torch.load(os.path.join(out, "member-0", "mask.pt"), weights_only=True)
    assert set(rewound) == set(initial)
    for name, value in initial.items():  # the output layer (the classifier) too
        expected = torch.where(masks[name], value, torch.zeros_like(value)) if name in masks else value
        assert torch.equal(rewound[name], expected), name


def test_lr_reaches_zero_at_the_end_of_every_round(base_tickets):
    out, _ = base_tickets
    for run in ("round-1", "round-2", "round-3", ""):
        assert last_logged_lr(os.path.join(out, "member-0", run, "train.log")) == 0


def test_rerun_skips_finished_members(pretrained, base_tickets):
    out, _ = base_tickets
    result = tickets(pretrained, out, "base", 1)
    assert "fairseq-train " not in result.stderr and result.stdout.count("skip member-") == 1


def test_ticket_is_a_plain_checkpoint_for_fairseq_validate_and_ensembles(pretrained, base_tickets):
    out, _ = base_tickets
    member = os.path.join(out, "member-0", "checkpoint_last.pt")
    result = run_cli("fairseq-validate", ".", "--user-dir", USER_DIR, "--task", "image_classification",
                     "--data-format", "sklearn_digits", "--path", member, "--valid-subset", "test", "--batch-size", 64)
    accuracy = float(re.search(r"accuracy ([\d.]+)", result.stdout + result.stderr).group(1))
    assert accuracy > 30  # 10 classes: chance is 10
    # a ticket and a dense model in one ensemble
    report = json.loads(run_cli("fairseq-plugins-ensemble", ".", "--path", f"{member}:{pretrained}", "--json").stdout)
    assert report["examples"] == 270 and report["metric"] == "accuracy"
    [group] = report["seed_groups"]
    assert group["single"][0] == pytest.approx(accuracy, abs=0.01)
    singles, ensemble = accuracies_of_members_and_mean_probability([member, pretrained], ".", "test")
    assert group["single"] == pytest.approx(singles) and report["all_members"]["ensemble"] == pytest.approx(ensemble)


# --- the ensemble command on a hand-built fixture ---------------------------------------------------

# Member A's logits are (x0, x1), member B's (x2, x3): which member is right on each example is set
# by hand, N11 = 4, N10 = 3, N01 = 2, N00 = 1; B is always the more confident, so the ensemble is B.
# Member C is right exactly where A is wrong, with margin 2 (A: 1, B: 3); member D predicts as B with
# margin 2. For two classes the mean-probability ensemble follows the sum of sigmoid(margin) - 1/2 of
# its members, so the most confident side wins.
A_RIGHT = [1, 1, 1, 1, 1, 1, 1, 0, 0, 0]
B_RIGHT = [1, 1, 1, 1, 0, 0, 0, 1, 1, 0]
MEMBER_WEIGHTS = {"a": {(0, 0): 1.0, (1, 1): 1.0}, "b": {(0, 2): 1.0, (1, 3): 1.0},
                  "c": {(0, 1): 2.0, (1, 0): 2.0}, "d": {(0, 2): 2 / 3, (1, 3): 2 / 3}}


def write_fixture(directory, classes=2):
    labels = np.arange(10) % 2
    images = np.zeros((10, 1, 1, 4), dtype=np.float32)
    for i, y in enumerate(labels):
        images[i, 0, 0, y if A_RIGHT[i] else 1 - y] = 1.0
        images[i, 0, 0, 2 + (y if B_RIGHT[i] else 1 - y)] = 3.0
    labels[0] = classes - 1 if classes > 2 else labels[0]  # a third class changes the label set only
    os.makedirs(directory, exist_ok=True)
    for split in ("train", "valid", "test"):
        np.savez(os.path.join(directory, f"{split}.npz"), images=images, labels=labels)
    return str(directory)


@pytest.fixture(scope="module")
def fixture_members(tmp_path_factory):
    root = tmp_path_factory.mktemp("fixture")
    data = write_fixture(root / "data")
    run_cli("fairseq-train", data, "--user-dir", USER_DIR, "--task", "image_classification", "--arch", "image_mlp",
            "--hidden-layers", 0, "--optimizer", "adam", "--lr", "1e-3", "--max-update", 1, "--batch-size", 10,
            "--num-workers", 0, "--save-dir", root / "trained", "--no-progress-bar")
    state = load(root / "trained" / "checkpoint_last.pt")
    paths = {}
    for name, entries in MEMBER_WEIGHTS.items():
        weight = torch.zeros(2, 4)
        for index, value in entries.items():
            weight[index] = value
        state["model"]["output_projection.weight"] = weight
        state["model"]["output_projection.bias"] = torch.zeros(2)
        paths[name] = str(root / f"{name}.pt")
        torch.save(state, paths[name])
    return data, paths, root


def test_ensemble_diversity_equals_the_hand_computed_contingency_table(fixture_members):
    data, paths, _ = fixture_members
    assert json.loads(run_cli("fairseq-plugins-ensemble", data, "--path", f"{paths['a']}:{paths['b']}",
                              "--json").stdout)["all_members"]["mask_iou"] is None  # no mask.pt beside them
    masks = {"a": {"w": torch.tensor([1, 1, 1, 0], dtype=torch.bool)}, "b": {"w": torch.tensor([0, 1, 1, 1], dtype=torch.bool)}}
    for name in ("a", "b"):
        os.makedirs(os.path.join(os.path.dirname(paths[name]), name), exist_ok=True)
        shutil.copyfile(paths[name], os.path.join(os.path.dirname(paths[name]), name, "checkpoint.pt"))
        torch.save(masks[name], os.path.join(os.path.dirname(paths[name]), name, "mask.pt"))
    paths = {name: os.path.join(os.path.dirname(path), name, "checkpoint.pt") for name, path in paths.items()}
    report = json.loads(run_cli("fairseq-plugins-ensemble", data, "--path", f"{paths['a']}:{paths['b']}", "--json").stdout)
    n11, n10, n01, n00 = 4, 3, 2, 1
    assert report["seed_groups"][0]["single"] == [70.0, 60.0]
    everyone = {key: value for key, value in report["all_members"].items() if key != "mask_iou"}
    assert report["protocol"] == everyone  # two members: the one sub-ensemble is all of them
    report = report["all_members"]
    assert report["ensemble"] == 60.0 and report["diff"] == pytest.approx(-5.0)
    assert report["q_statistic"] == pytest.approx((n11 * n00 - n01 * n10) / (n11 * n00 + n01 * n10))
    assert report["correlation"] == pytest.approx((n11 * n00 - n01 * n10) / ((n11 + n10) * (n01 + n00) * (n11 + n01) * (n10 + n00)) ** 0.5)
    assert report["disagreement"] == pytest.approx((n01 + n10) / 10)
    assert report["double_fault"] == pytest.approx(n00 / 10)
    assert report["mask_iou"] == pytest.approx(2 / 4)  # kept sets {0,1,2} and {1,2,3}


def test_ensemble_reports_the_papers_protocol_over_seed_groups(fixture_members, tmp_path):
    """Seed groups [A, B, C] and [A, B, D] (singles 70, 60, 30, 60), by hand from the comment above:
    group 1: pairs AB -> B 60, AC -> C 30, BC -> B 60; all three -> B 60 (A and C cancel but for 0.15);
    group 2: every ensemble predicts as B, 60. The protocol averages sizes 2 and 3, then the groups."""
    data, paths, _ = fixture_members
    out = tmp_path / "report.json"
    result = run_cli("fairseq-plugins-ensemble", data, "--path", ":".join(paths[m] for m in "abc"),
                     "--path", ":".join(paths[m] for m in "abd"), "--user-dir", USER_DIR, "--json", out)
    report = json.loads(out.read_text())
    assert report["combinations"] == [2, 3] and "every sub-ensemble of 2,3 members" in result.stdout
    group_1, group_2 = report["seed_groups"]
    assert group_1["by_size"]["2"]["ensembles"] == 3 and group_1["by_size"]["2"]["ensemble"] == pytest.approx(50.0)
    assert group_1["by_size"]["2"]["mean_single"] == pytest.approx((65 + 50 + 45) / 3)
    assert group_2["all_members"]["ensemble"] == 60.0 and group_2["single"] == [70.0, 60.0, 60.0]
    protocol = report["protocol"]
    assert protocol["ensemble"] == pytest.approx(((50 + 60) / 2 + 60) / 2)
    assert protocol["mean_single"] == pytest.approx(((160 / 3) + (190 / 3)) / 2)
    assert protocol["diff"] == pytest.approx(protocol["ensemble"] - protocol["mean_single"])
    assert protocol["disagreement"] == pytest.approx((2 / 3 + 1 / 3) / 2)  # pairs: AB .5, AC 1, BC .5; AB .5, AD .5, BD 0
    everyone = report["all_members"]
    assert everyone["ensemble"] == 60.0 and everyone["diff"] == pytest.approx(((60 - 160 / 3) + (60 - 190 / 3)) / 2)


def edited_copy(path, dest, edit):
    state = load(path)
    edit(state["cfg"])
    torch.save(state, dest)
    return str(dest)


def test_ensemble_bad_inputs(fixture_members, tmp_path, capsys):
    data, paths, root = fixture_members
    other_task = edited_copy(paths["b"], tmp_path / "task.pt", lambda cfg: cfg["task"].update(_name="sentence_prediction"))
    three_classes = write_fixture(tmp_path / "three", classes=3)
    other_labels = edited_copy(paths["b"], tmp_path / "labels.pt", lambda cfg: cfg["task"].update(data=three_classes))
    result = run_cli("fairseq-plugins-ensemble", data, "--path", f"{paths['a']}:{other_task}", check=False)
    one_line_error(result, "was trained with task sentence_prediction")
    with pytest.raises(ConfigError, match=re.escape("have different dictionaries (classes)")):
        ensemble.main([data, "--path", f"{paths['a']}:{other_labels}"])
    with pytest.raises(SystemExit):
        ensemble.main([data, "--path", paths["a"]])
    assert "two or more checkpoints" in capsys.readouterr().err


def test_tickets_bad_inputs(fixture_members, pretrained, tmp_path, capsys):
    _, paths, _ = fixture_members
    result = run_cli("fairseq-plugins-tickets", ".", "--pretrained", paths["a"], "--out", tmp_path, "--method", "base",
                     "--members", 2, "--", *FINETUNE, check=False)
    one_line_error(result, "--pretrained", "none of its parameters is prunable")
    no_updates = [option for option in FINETUNE if option not in ("--max-update", 8)]
    cases = (
        (("base", 2, "--target-ratio", "1.2"), FINETUNE, "argument --target-ratio: must be in (0, 1) (got 1.2)"),
        (("active", 1), FINETUNE, "--method active needs --members 2 or more"),
        (("random", 2), FINETUNE, "--method random needs --tau > 0"),  # else it is BASE-LT with other seeds
        (("active", 2, "--tau", "0"), FINETUNE, "--method active needs --tau > 0"),
        (("base", 2, "--tau", "1e-3"), FINETUNE, "--tau applies to --method active and random only"),
        (("base", 2, "--rounds", "0"), FINETUNE, "argument --rounds: must be >= 1 (got 0)"),
        (("base", 1), no_updates, "give --max-update"),
        (("base", 1), FINETUNE + ["--lr-scheduler", "fixed"], "--lr-scheduler is set by fairseq-plugins-tickets"),
    )
    for (method, members, *options), train_options, expected in cases:
        with pytest.raises(SystemExit):
            tickets_cli.main([".", "--pretrained", pretrained, "--out", str(tmp_path), "--method", method,
                              "--members", str(members), *options, "--", *map(str, train_options)])
        error = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        assert len(error) == 1 and expected in error[0], error


# --- slow: the regularisers' effect on mask overlap, and seq2seq tickets ----------------------------

@pytest.mark.slow
def test_random_and_active_tickets_overlap_less_than_base(pretrained, tmp_path):
    iou = {}
    for method in ("base", "active", "random"):
        tau = [] if method == "base" else ["--tau", "1.0"]
        tickets(pretrained, tmp_path / method, method, 2, "--rounds", 1, *tau)
        masks = [torch.load(tmp_path / method / f"member-{i}" / "mask.pt", weights_only=True) for i in range(2)]
        iou[method] = pruning.mean_pairwise_iou(masks)
    assert iou["random"] < iou["base"] and iou["active"] < iou["base"], iou


@pytest.mark.slow
def test_fairseq_generate_ensembles_two_seq2seq_tickets(toy_bin, tmp_path):
    train = ["--task", "translation", "--arch", "transformer", *TINY_MODEL, "--share-all-embeddings",
             "--optimizer", "adam", "--lr", "2e-3", "--max-tokens", 2048, "--criterion", "cross_entropy",
             "--no-progress-bar", "--log-format", "simple", "--no-epoch-checkpoints", "--num-workers", 0]
    run_cli("fairseq-train", toy_bin, "--user-dir", USER_DIR, *train, "--max-update", 20, "--save-dir", tmp_path / "pre")
    run_cli("fairseq-plugins-tickets", toy_bin, "--pretrained", tmp_path / "pre" / "checkpoint_last.pt", "--out",
            tmp_path / "tickets", "--method", "base", "--members", 2, "--rounds", 1, "--target-ratio", 0.2,
            "--", *train, "--max-update", 5)
    members = [str(tmp_path / "tickets" / f"member-{i}" / "checkpoint_last.pt") for i in range(2)]
    for member in members:
        model = load(member)["model"]
        names = pruning.prunable_names(model)
        assert any("encoder_attn" in name for name in names)
        zeros = sum(int((model[name] == 0).sum()) for name in names)
        assert abs(zeros - 0.2 * sum(model[name].numel() for name in names)) <= 1
    result = run_cli("fairseq-generate", toy_bin, "--user-dir", USER_DIR, "--path", ":".join(members),
                     "--gen-subset", "test", "--beam", 2, "--batch-size", 32, "--required-batch-size-multiple", 1)
    assert count_hypotheses(result.stdout) == 101
    assert "loading model(s) from " + ":".join(members) in result.stdout + result.stderr


def test_bagging_subset_keeps_a_seeded_fraction_in_the_wrapped_order():
    from fairseq.data import ListDataset, NestedDictionaryDataset, SortDataset

    from fairseq_plugins.tasks.ticket_training import BaggingSubset

    items = ListDataset([torch.tensor([i]) for i in range(50)], sizes=np.ones(50, dtype=np.int64))
    order = np.random.default_rng(0).permutation(50)
    dataset = SortDataset(NestedDictionaryDataset({"x": items}, sizes=[items.sizes]), sort_order=[order])
    subsets = [BaggingSubset(dataset, 0.9, seed) for seed in (1, 1, 2)]
    assert len(subsets[0]) == 45 and np.array_equal(subsets[0].indices, subsets[1].indices)
    assert not np.array_equal(subsets[0].indices, subsets[2].indices)
    picked = subsets[0].indices[subsets[0].ordered_indices()]  # dataset indices, in batching order
    kept = set(subsets[0].indices.tolist())
    assert picked.tolist() == [i for i in dataset.ordered_indices().tolist() if i in kept]
    assert [subsets[0][i]["x"].item() for i in range(3)] == subsets[0].indices[:3].tolist()
