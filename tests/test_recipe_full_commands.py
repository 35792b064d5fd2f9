"""The recipes' full-size training commands (not only their SMALL=1 values): DRY_RUN=1 with GPUS=8
prints the fairseq-train command each would run; its flags are the authors' settings."""

import shlex

import pytest

from recipe_helpers import run_recipe


@pytest.fixture
def prepared(tmp_path):
    (tmp_path / ".done").mkdir()
    (tmp_path / ".done" / "preprocess").touch()
    return tmp_path


def full_command(recipe, experiment, work_dir, **env):
    result = run_recipe(f"{recipe}/train.sh", env={"DRY_RUN": "1", "GPUS": "8", "WORK_DIR": str(work_dir), **env},
                        args=[experiment])
    words = shlex.split(result.stdout.strip().splitlines()[-1])
    # 8 GPUs: one data-parallel process per GPU through torchrun.
    assert words[:2] == ["torchrun", "--nnodes"] and words[words.index("--nproc_per_node") + 1] == "8"
    assert words[words.index("--master_port") + 2].endswith("fairseq-train")
    assert "--cpu" not in words and "--fp16" in words
    flags = {}
    for i, word in enumerate(words):
        if word.startswith("--"):
            flags[word] = words[i + 1] if i + 1 < len(words) and not words[i + 1].startswith("--") else True
    return flags


def tokens_per_update(flags):
    return int(flags["--max-tokens"]) * 8 * int(flags["--update-freq"])


def test_duc2004_alone_is_the_authors_command(prepared):
    flags = full_command("duc2004", "alone-binary", prepared)
    assert flags["--positions"] == "lrpe+pe" and flags["--length-unit"] == "chars"
    assert flags["--alone-relu-dropout"] == "0.1" and flags["--alone-relu-dropout-off-after"] == "300"
    assert flags["--clip-norm"] == "1.0" and flags["--alone-inter-dim"] == "1024"
    assert tokens_per_update(flags) == 229376


@pytest.mark.parametrize("experiment", ["alone-binary", "standard"])
def test_wmt14_alone_and_its_baseline_are_the_authors_command(prepared, experiment):
    flags = full_command("wmt14_en_de", experiment, prepared)
    assert flags["--max-update"] == "100000" and flags["--clip-norm"] == "1.0" and flags["--lr"] == "0.0015"
    assert tokens_per_update(flags) >= 460000
    if experiment == "alone-binary":
        assert (flags["--alone-inter-dim"], flags["--alone-relu-dropout-off-after"]) == ("8192", "4500")


def test_two_machines_share_the_tokens_per_update(prepared):
    one, two = (full_command("wmt14_en_de", "b2t-6l", prepared, NNODES=str(nodes), NODE_RANK="1") for nodes in (1, 2))
    assert (two["--nnodes"], two["--node_rank"]) == ("2", "1")
    assert int(two["--update-freq"]) * 2 == int(one["--update-freq"])


def test_wmt14_b2t_keeps_its_papers_budget(prepared):
    flags = full_command("wmt14_en_de", "b2t-6l", prepared)
    assert flags["--max-update"] == "50000" and "--clip-norm" not in flags
