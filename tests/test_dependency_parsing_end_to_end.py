"""Instance-based dependency parsing through fairseq-train/-validate and the task's API.

A generated toy treebank (tests/parsing_helpers.py); the reader's one-line errors; the batch
layout; each arc/label head trains, resumes and evaluates; mst outputs are trees where greedy ones
are not; unknown test words; explanations whose contributions add up to the arc score.
"""

import json
import re
import shutil
from types import SimpleNamespace

import pytest
import torch

from conftest import USER_DIR, build_through_namespace_api, one_line_error, run_cli
from fairseq_plugins.cli.checkpoints import load_checkpoint
from fairseq_plugins.data.conllu_treebank import is_punctuation, read_conllu
from fairseq_plugins.data.sentences import batches_in_index_order
from fairseq_plugins.errors import ConfigError
from fairseq_plugins.modules.instance_memory import InstanceMemory
from fairseq_plugins.tasks.dependency_parsing import DependencyParsingConfig, DependencyParsingTask
from parsing_helpers import write_treebank

TINY = ["--arch", "dependency_parser_bilstm", "--encoder-embed-dim", 32, "--encoder-hidden-dim", 32,
        "--mlp-dim", 32, "--edge-dim", 32, "--instance-sentences", 16, "--dropout", 0.1, "--mlp-dropout", 0.1]
FAST = ["--optimizer", "adam", "--lr", 3e-3, "--batch-size", 16, "--num-workers", 0, "--no-progress-bar",
        "--log-format", "simple", "--log-interval", 100, "--seed", 2]


def train(data, save_dir, *flags, epochs=6, check=True):
    return run_cli("fairseq-train", data, "--user-dir", USER_DIR, "--task", "dependency_parsing",
                   "--criterion", "dependency_parsing", *TINY, *FAST, "--max-epoch", epochs,
                   "--save-dir", save_dir, "--no-epoch-checkpoints", *flags, check=check)


def validate(data, checkpoint, *flags, check=True):
    return run_cli("fairseq-validate", data, "--user-dir", USER_DIR, "--task", "dependency_parsing",
                   "--path", checkpoint, "--valid-subset", "test", "--batch-size", 32, "--num-workers", 0,
                   *flags, check=check)


def metrics(result, subset="test"):
    line = [line for line in (result.stdout + result.stderr).splitlines() if f"valid on '{subset}' subset" in line][-1]
    return {name: float(value) for name, value in re.findall(r"\| (\w+) ([\d.]+)", line)}


@pytest.fixture(scope="module")
def treebank(tmp_path_factory):
    return write_treebank(tmp_path_factory.mktemp("treebank"))


def task_for(data, **overrides):
    return DependencyParsingTask.setup_task(DependencyParsingConfig(data=str(data), seed=1, **overrides))


SENTENCE = """# sent_id = s1
# text = Hello, world!
1-2\tHello,\t_\t_\t_\t_\t_\t_\t_\t_
1\tHello\thello\tINTJ\t_\t_\t0\troot\t_\t_
2\t,\t,\tPUNCT\t_\t_\t1\tpunct\t_\t_
2.1\tgone\tgo\tVERB\t_\t_\t_\t_\t_\t_
3\tworld\tworld\tNOUN\t_\t_\t1\tvocative\t_\t_
4\t!\t!\tPUNCT\t_\t_\t1\tpunct\t_\t_

"""


def test_reader_skips_multiword_tokens_empty_nodes_and_comments(tmp_path):
    (tmp_path / "train.conllu").write_text(SENTENCE * 2)
    sentences = read_conllu(str(tmp_path / "train.conllu"))
    assert len(sentences) == 2 and sentences[0].name == "s1" and sentences[1].line == 10
    assert sentences[0].form == ["Hello", ",", "world", "!"] and sentences[0].heads == [0, 1, 1, 1]
    assert sentences[0].labels == ["root", "punct", "vocative", "punct"]


@pytest.mark.parametrize("edit, message", [
    (lambda text: text.replace("3\tworld\tworld\tNOUN\t_\t_\t1", "3\tworld\tworld\tNOUN\t_\t1"),
     "train.conllu:7: expected 10 tab-separated CoNLL-U columns, got 9"),
    (lambda text: text.replace("\t1\tvocative", "\tx\tvocative"), "train.conllu:7: HEAD 'x' is not a word index"),
    (lambda text: text.replace("\t1\tvocative", "\t7\tvocative"),
     "train.conllu:7: head 7 is out of range (sentence s1 has 4 words)"),
    (lambda text: text.replace("\t0\troot", "\t3\troot"), "train.conllu:1: sentence s1 has no root"),
    (lambda text: text.replace("\t1\tvocative", "\t0\tvocative"),
     "train.conllu:1: sentence s1 has 2 roots (words 1, 3)"),
    (lambda text: text.replace("\t1\tvocative", "\t4\tvocative").replace("4\t!\t!\tPUNCT\t_\t_\t1", "4\t!\t!\tPUNCT\t_\t_\t3"),
     "train.conllu:1: sentence s1 has a cycle through words 3, 4"),
    (lambda text: text.replace("3\tworld", "5\tworld"), "train.conllu:7: word id '5' where 3 was expected"),
    (lambda text: text.replace("\t1\tvocative", "\t1\t_"), "train.conllu:7: word 3 has no DEPREL label"),
])
def test_bad_conllu_is_one_line_error_with_file_and_line(tmp_path, edit, message):
    (tmp_path / "train.conllu").write_text(edit(SENTENCE))
    with pytest.raises(ConfigError, match=re.escape(message)):
        read_conllu(str(tmp_path / "train.conllu"))


def test_bad_gold_tree_is_one_line_in_fairseq_train(tmp_path, treebank):
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.conllu").write_text(open(f"{treebank}/train.conllu").read())
    (data / "valid.conllu").write_text(SENTENCE.replace("\t1\tvocative", "\t0\tvocative"))
    result = train(data, tmp_path / "ck", epochs=1, check=False)
    one_line_error(result, "valid.conllu:1: sentence s1 has 2 roots (words 1, 3)")


def test_punctuation_is_every_character_in_unicode_category_p():
    assert all(map(is_punctuation, [".", ",", "...", "«", "—", "?!", "''", "-"]))
    assert not any(map(is_punctuation, ["$", "a.", "+", "1", "", "``x"]))


def test_batches_have_ids_root_and_unknown_words(tmp_path, treebank):
    task = task_for(treebank, eval_exclude_labels="det")
    assert task.labels == sorted(["advmod", "amod", "det", "dobj", "nsubj", "pobj", "prep", "punct", "root"])
    (tmp_path / "train.conllu").write_text(open(f"{treebank}/train.conllu").read())
    (tmp_path / "test.conllu").write_text(SENTENCE)  # no word of it is in the training vocabulary
    task = task_for(tmp_path)
    dataset = task.load_dataset("test")
    batch = dataset.collater([dataset[0]])
    tokens = batch["net_input"]["src_tokens"][0].tolist()
    assert tokens[0] == task.root_index and tokens[1:] == [task.words.unk()] * 4
    assert batch["id"].tolist() == [0] and batch["ntokens"] == 4
    assert batch["target"][0].tolist() == [-1, 0, 1, 1, 1]
    assert batch["labels"][0].tolist() == [-1, task.label_index["root"], task.label_index["punct"], -1,
                                           task.label_index["punct"]]  # vocative: never seen in training
    assert batch["punct"][0].tolist() == [False, False, True, False, True]
    scores = validation_scores(tmp_path, split="test")  # parsing a sentence of unknown words
    assert scores["sentences"] == scores["trees"] == 1 and scores["words"] == 2


def test_excluded_labels_and_long_sentences(tmp_path, treebank):
    task = task_for(treebank, eval_exclude_labels="det,punct")
    dataset = task.load_dataset("valid")
    item = dataset[0]
    expected = [label not in ("det", "punct") for label in dataset.sentences[0].labels]
    assert item["scored"].tolist() == [False] + expected
    with pytest.raises(ConfigError, match=r"valid\.conllu:\d+: sentence valid-\d+ has \d+ words, more than --max-positions 6"):
        task_for(treebank, max_positions=6).load_dataset("valid")


@pytest.mark.parametrize("heads", [
    ("--arc-head", "instance", "--label-head", "instance", "--similarity", "dot"),
    ("--arc-head", "weight", "--label-head", "weight"),
    pytest.param(("--arc-head", "instance", "--label-head", "weight", "--similarity", "cosine"), marks=pytest.mark.slow),
    pytest.param(("--arc-head", "weight", "--label-head", "instance", "--similarity", "cosine", "--fixed-cosine-scale"),
                 marks=pytest.mark.slow),
    pytest.param(("--arc-head", "weight", "--label-head", "instance", "--instance-labels", "mean"), marks=pytest.mark.slow),
])
def test_each_head_trains_resumes_and_evaluates(tmp_path, treebank, heads):
    first = train(treebank, tmp_path, *heads, epochs=3)
    assert "num_updates 60" in first.stderr + first.stdout
    resumed = train(treebank, tmp_path, *heads, epochs=6)
    log = resumed.stdout + resumed.stderr
    assert re.search(r"[Ll]oaded checkpoint .*checkpoint_last\.pt \(epoch 4 @ 60 updates\)", log)
    assert "num_updates 120" in log
    scores = metrics(validate(treebank, tmp_path / "checkpoint_last.pt"))
    test = read_conllu(f"{treebank}/test.conllu")
    assert (scores["bsz"], scores["wpb"]) == (len(test), sum(len(s.heads) for s in test))  # no sentence dropped
    assert scores["well_formed"] == 100.0  # mst: every output a tree
    assert scores["uas"] > 75 and scores["las"] > 30


def untrained_parser(data, **overrides):
    """An untrained instance-based parser, its task and criterion, built in-process as fairseq-train builds them."""
    from fairseq import tasks
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf
    from fairseq.options import get_training_parser, parse_args_and_arch

    flags = ["--task", "dependency_parsing", "--criterion", "dependency_parsing",
             "--user-dir", USER_DIR, *map(str, TINY)]
    for name, value in overrides.items():
        flags += [f"--{name.replace('_', '-')}", str(value)]
    cfg = convert_namespace_to_omegaconf(parse_args_and_arch(get_training_parser(), [str(data), *flags]))
    task = tasks.setup_task(cfg.task)
    return task.build_model(cfg.model).eval(), task, task.build_criterion(cfg.criterion)


def validation_scores(data, split="valid", **overrides):
    torch.manual_seed(0)
    model, task, criterion = untrained_parser(data, **overrides)
    return summed_counts(task, model, criterion, split)


def summed_counts(task, model, criterion, split):
    """The attachment counts of ``split`` through ``task.valid_step``, as fairseq-validate computes them."""
    dataset = task.load_dataset(split)
    outputs = [task.valid_step(batch, model, criterion)[2] for batch in batches_in_index_order(dataset, 16)]
    return {name: sum(output[name] for output in outputs) for name in ("sentences", "trees", "words", "heads_ok", "labels_ok")}


def test_transformer_encoder_and_eisner_decoder(treebank):
    scores = validation_scores(treebank, arch="dependency_parser_transformer", encoder_embed_dim=32,
                               encoder_attention_heads=2, decoder="eisner")
    assert scores["trees"] == scores["sentences"] == 41 and scores["words"] > 0


def test_mst_outputs_are_trees_where_greedy_heads_are_not(treebank):
    greedy = validation_scores(treebank, decoder="greedy")
    mst = validation_scores(treebank, decoder="mst")
    assert mst["trees"] == mst["sentences"] == 41
    assert greedy["trees"] < greedy["sentences"]


def test_bad_flags_are_one_line_errors(tmp_path, treebank):
    one_line_error(train(treebank, tmp_path, "--arc-head", "prototype", epochs=1, check=False),
                   "--arc-head must be one of instance, weight (got 'prototype')")
    with pytest.raises(ConfigError, match=re.escape("--input-field must be one of form, lemma, upos (got 'xpos')")):
        task_for(treebank, input_field="xpos")
    with pytest.raises(ConfigError, match=re.escape("--inference-sentences must be >= 0 (got -1)")):
        task_for(treebank, inference_sentences=-1)
    with pytest.raises(ConfigError, match=re.escape("--similarity must be one of dot, cosine (got 'l2')")):
        untrained_parser(treebank, similarity="l2")


@pytest.fixture(scope="module")
def cosine_checkpoint(treebank, tmp_path_factory):
    save_dir = tmp_path_factory.mktemp("cosine")
    train(treebank, save_dir, "--similarity", "cosine", epochs=4)
    return save_dir / "checkpoint_last.pt"


def test_explanations_contributions_sum_to_the_arc_score(cosine_checkpoint, treebank, tmp_path):
    model, _, task = load_checkpoint(str(cosine_checkpoint))
    report = task.explain(model, task.load_dataset("test"), top_k=4)
    predictions, summary = report["predictions"], report["summary"]
    assert summary["predicted_arcs"] == len(predictions) == sum(len(s.heads) for s in task.dataset("test").sentences)
    assert summary["training_edges"] == sum(len(s.heads) for s in task.train_sentences)
    for prediction in predictions:
        assert prediction["explained_score"] == pytest.approx(prediction["arc_score"], rel=1e-4, abs=1e-4)
        contributions = [edge["contribution"] for edge in prediction["top"]]
        assert len(contributions) == 4 and contributions == sorted(contributions, reverse=True)
    # The top training edge: a real gold edge of the training data.
    edge = predictions[0]["top"][0]
    sentence = next(s for s in task.train_sentences if s.name == edge["train_sentence"])
    assert sentence.heads[edge["dependent"] - 1] == edge["head"] and sentence.labels[edge["dependent"] - 1] == edge["label"]
    assert summary["plausibility"] > summary["label_prior"] and summary["arc_plausibility"] > summary["label_prior"]
    assert all(len(p["label_top"]) == 4 for p in predictions)
    # The command: printed lines and the JSON report.
    result = run_cli("fairseq-plugins-explain", treebank, "--path", cosine_checkpoint, "--valid-subset", "test",
                     "--top-k", 2, "--print", 1, "--json", tmp_path / "explanations.json")
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"{predictions[0]['sentence']} 1 ") and lines[1].lstrip().startswith("1. ")
    assert lines[3].lstrip().startswith("label 1. ") and "plausibility" in lines[-1] and len(lines) == 6
    written = json.loads((tmp_path / "explanations.json").read_text())
    assert len(written["predictions"]) == len(predictions) and len(written["predictions"][0]["top"]) == 2


def test_explanations_stream_the_training_edges_in_chunks_with_the_same_report(cosine_checkpoint, monkeypatch):
    model, _, task = load_checkpoint(str(cosine_checkpoint))
    test = task.load_dataset("test")
    whole = task.explain(model, test, top_k=3)  # the toy memory fits one chunk
    assert whole["summary"]["training_edges"] > 2 * 9

    def full_matrix(*args):
        raise AssertionError("the (predicted arcs x training edges) matrix was built")

    monkeypatch.setattr(InstanceMemory, "similarities", full_matrix)
    chunked = task.explain(model, test, top_k=3, chunk_size=9)  # several chunks per batch
    for streamed, reference in zip(chunked["predictions"], whole["predictions"]):
        assert streamed["explained_score"] == pytest.approx(reference["explained_score"], rel=1e-5, abs=1e-6)
        # (the toy treebank repeats edges: tied training edges may come in another order, with the same values)
        for key, value in (("top", "contribution"), ("label_top", "similarity")):
            assert [e[value] for e in streamed[key]] == pytest.approx([e[value] for e in reference[key]], rel=1e-5, abs=1e-6)
    assert chunked["summary"] == whole["summary"]


def test_sampled_scoring_memory_explains_from_the_drawn_sentences(cosine_checkpoint):
    model, _, task = load_checkpoint(str(cosine_checkpoint))
    task.cfg.inference_sentences = 2
    report = task.explain(model, task.load_dataset("test"), top_k=2, batch_size=2)
    assert report["summary"]["training_edges"] < sum(len(s.heads) for s in task.train_sentences)
    for p in report["predictions"]:
        assert p["explained_score"] == pytest.approx(p["arc_score"], rel=1e-4, abs=1e-4)


def test_weight_based_arcs_have_no_explanations(treebank):
    model, task, _ = untrained_parser(treebank, arc_head="weight")
    with pytest.raises(ConfigError, match="explanations need a model trained with --arc-head instance"):
        task.explain(model, task.load_dataset("test"), top_k=3)


def test_memory_is_the_whole_training_set_at_inference(cosine_checkpoint):
    model, _, task = load_checkpoint(str(cosine_checkpoint))
    task.prepare_for_inference(model)
    for memory in (model.arc_memory, model.label_memory):
        ids = memory.ids
        assert len(ids) == sum(len(s.heads) for s in task.train_sentences)
        assert torch.equal(ids[:, 0].unique(), torch.arange(len(task.train_sentences)))


@pytest.mark.parametrize("arch, encoder", [("dependency_parser_bilstm", "bilstm"), ("dependency_parser_transformer", "transformer")])
def test_presets_build_through_the_namespace_api(treebank, arch, encoder):
    args, model = build_through_namespace_api(treebank, "dependency_parsing", arch, "--criterion", "dependency_parsing")
    assert (args.encoder_type, args.arc_head, args.decoder) == (encoder, "instance", "mst")
    assert sum(p.numel() for p in model.parameters()) > 0


# Hand-made gold trees and predictions with known scores. Gold: "The dog barks loudly ." (det, nsubj,
# root, advmod, punct) and "Birds sing !" (nsubj, root, punct).
GOLD = [[("The", 2, "det"), ("dog", 3, "nsubj"), ("barks", 0, "root"), ("loudly", 3, "advmod"), (".", 3, "punct")],
        [("Birds", 2, "nsubj"), ("sing", 0, "root"), ("!", 2, "punct")]]
# Predicted: "dog" right head, wrong label; "loudly" wrong head; "!" wrong head.
PREDICTED = [[(2, "det"), (3, "dobj"), (0, "root"), (2, "advmod"), (3, "punct")], [(2, "nsubj"), (0, "root"), (1, "punct")]]


class HandMadeParser(torch.nn.Module):
    """Decodes PREDICTED whatever the input: the criterion's metrics on known predictions."""

    def __init__(self, task):
        super().__init__()
        self.task = task

    def forward(self, src_tokens, src_lengths):
        return torch.zeros(*src_tokens.shape, src_tokens.size(1)), {}

    def label_scores(self, extra, heads):
        return torch.zeros(*heads.shape, len(self.task.labels))

    def parse(self, arc_scores, extra, lengths):
        heads, labels = torch.full(arc_scores.shape[:2], -1), torch.full(arc_scores.shape[:2], -1)
        for row, sentence in enumerate(PREDICTED):
            for dependent, (head, label) in enumerate(sentence, start=1):
                heads[row, dependent], labels[row, dependent] = head, self.task.label_index[label]
        return heads, labels


@pytest.mark.parametrize("exclude, expected", [
    # without punctuation: 6 words, heads right 5, heads and labels right 4; with it: 8, 6, 5
    ("", {"uas": 83.33, "las": 66.67, "uas_punct": 75.0, "las_punct": 62.5, "well_formed": 100.0}),
    # --eval-exclude-labels advmod leaves "loudly" (wrong head) out: 5, 5, 4; with punctuation 7, 6, 5
    ("advmod", {"uas": 100.0, "las": 80.0, "uas_punct": 85.71, "las_punct": 71.43, "well_formed": 100.0}),
])
def test_attachment_scores_of_hand_made_predictions(tmp_path, exclude, expected):
    from fairseq.logging import metrics as fairseq_metrics
    from fairseq_plugins.criterions.dependency_parsing import DependencyParsingCriterion

    rows = [[(form, head, label) for form, head, label in sentence] for sentence in GOLD]
    text = "".join("".join(f"{i}\t{form}\t_\t_\t_\t_\t{head}\t{label}\t_\t_\n" for i, (form, head, label)
                           in enumerate(sentence, start=1)) + "\n" for sentence in rows)
    for split in ("train", "valid"):
        (tmp_path / f"{split}.conllu").write_text(text + "1\tx\t_\t_\t_\t_\t0\tdobj\t_\t_\n\n" * (split == "train"))
    task = task_for(tmp_path, eval_exclude_labels=exclude)
    dataset = task.load_dataset("valid")
    model = HandMadeParser(task).eval()
    _, _, output = DependencyParsingCriterion(task).forward(model, dataset.collater([dataset[0], dataset[1]]))
    with fairseq_metrics.aggregate() as aggregated:
        DependencyParsingCriterion.reduce_metrics([output])
    assert {name: round(aggregated.get_smoothed_value(name), 2) for name in expected} == expected


def test_training_instances_are_the_sentences_outside_the_batch(tmp_path):
    data = write_treebank(tmp_path, sizes=(("train", 12), ("valid", 2)))
    model, task, criterion = untrained_parser(data, instance_sentences=100)  # more than there are: all but the batch
    dataset = task.load_dataset("train")
    batch = dataset.collater([dataset[i] for i in (0, 4, 7)])
    task.train_step(batch, model.train(), criterion, SimpleNamespace(backward=lambda loss: loss.backward()), 1)
    for memory in (model.arc_memory, model.label_memory):
        assert set(memory.ids[:, 0].tolist()) == set(range(12)) - {0, 4, 7}


def sentence_blocks(text):
    return [block + "\n\n" for block in text.strip("\n").split("\n\n")]


@pytest.mark.parametrize("heads", [("--arc-head", "weight", "--label-head", "weight"),
                                   ("--arc-head", "instance", "--label-head", "instance")])
def test_a_checkpoint_maps_words_and_labels_whatever_train_conllu_now_holds(tmp_path, treebank, heads):
    """Training data edited after training: the same scores (a weight-based model maps words and
    labels from its checkpoint, without train.conllu at all) or, where the instance memory needs the
    training sentences, a one-line error naming the file; never other numbers. Evaluated as
    fairseq-validate loads a checkpoint (in-process, then once through the command)."""
    data = tmp_path / "data"
    shutil.copytree(treebank, data)
    train(data, tmp_path, *heads, "--max-update", 10, epochs=1)
    checkpoint = tmp_path / "checkpoint_last.pt"

    def counts(path=checkpoint):
        model, cfg, task = load_checkpoint(str(path))
        return summed_counts(task, model, task.build_criterion(cfg.criterion), "test")

    before = counts()
    state = torch.load(checkpoint, weights_only=False)
    assert state["task_state"]["labels"] == task_for(data).labels
    state["task_state"] = {}  # as checkpoints written before they carried a vocabulary: rebuilt from train.conllu
    torch.save(state, tmp_path / "older.pt")
    assert counts(tmp_path / "older.pt") == before
    train_file = data / "train.conllu"
    blocks = sentence_blocks(train_file.read_text())
    edits = {"15 duplicates": "".join(blocks + blocks[:15]), "20 removed": "".join(blocks[20:]),
             "a new word": "".join(blocks + [blocks[0].replace("\tdog\t", "\tzebra\t")] * 2)}
    for edit, text in edits.items():
        train_file.write_text(text)
        if "instance" in heads:
            with pytest.raises(ConfigError, match=f"{train_file} is not the file this checkpoint was trained on"):
                counts()
        else:
            assert counts() == before, edit
    if "instance" in heads:
        one_line_error(validate(data, checkpoint, check=False), f"{train_file} is not the file this checkpoint was trained on")
    else:
        train_file.unlink()
        scores = metrics(validate(data, checkpoint))
        assert (scores["uas"], scores["las"]) == tuple(round(100 * before[name] / before["words"], 2)
                                                       for name in ("heads_ok", "labels_ok"))


def test_word_embeddings_are_the_files_words_frozen_and_carried_by_the_checkpoint(tmp_path, treebank):
    """``--word-embeddings`` as in NER (one implementation, InstanceSetTask.word_vocabulary): the file's
    words plus the training words it lacks, the vectors copied in when training starts and kept fixed
    under --freeze-word-embeddings, so a word only the file knows keeps its vector at test time."""
    vectors = {"dog": [0.5, -1.0, 2.0, 0.25], "sees": [1.5, 0.0, -0.5, 1.0], "zebra": [-2.0, 1.0, 0.5, 3.0]}
    vector_file = tmp_path / "vectors.txt"
    vector_file.write_text("".join(f"{word} {' '.join(map(str, vector))}\n" for word, vector in vectors.items()))
    train(treebank, tmp_path, "--word-embeddings", vector_file, "--freeze-word-embeddings", "--encoder-embed-dim", 4,
          "--max-update", 10, epochs=1)
    checkpoint = tmp_path / "checkpoint_last.pt"
    state = torch.load(checkpoint, weights_only=False)
    words, first = state["task_state"]["words"], state["task_state"]["first_pretrained"]
    assert words[first:first + 3] == ["dog", "sees", "zebra"] and "<root>" in words[:first] and "cat" in words[:first]
    for word, vector in vectors.items():  # after 10 updates: copied in, and frozen
        torch.testing.assert_close(state["model"]["encoder.embed_tokens.pretrained"][words.index(word) - first],
                                   torch.tensor(vector))
    _, _, task = load_checkpoint(str(checkpoint))
    assert task.words.index("Zebra") == words.index("zebra")  # not a training word: looked up lowercased
    assert metrics(validate(treebank, checkpoint))["well_formed"] == 100.0
