"""fairseq-plugins-predict and fairseq_plugins.hub on tiny trained models (issue 27).

Each path through the real command and the Python API: predicting the labelled test split gives
exactly the scores fairseq-validate reports (NER F1 through seqeval on the written CoNLL; parsing
UAS/LAS/LAS-UD on the written CoNLL-U; image accuracy); ensembles are the mean of their members'
probabilities; classifier heads predict with their training directory removed; written CoNLL-U
keeps every line and column but HEAD and DEPREL; unreadable input is one line naming file and line.
"""

import json
import os
import random
import shutil

import numpy as np
import pytest
import torch
from seqeval.metrics import f1_score
from seqeval.scheme import IOB2

from conftest import BIN_DIR, USER_DIR, one_line_error, run_cli
from fairseq_plugins import hub
from fairseq_plugins.criterions.dependency_parsing import attachment_counts, universal_label_indices
from fairseq_plugins.data.conll_ner import read_conll
from fairseq_plugins.data.conllu_treebank import is_punctuation, read_conllu
from fairseq_plugins.errors import ConfigError
from fairseq_plugins.models.dependency_parser import DependencyParser
from fairseq_plugins.modules.spans import spans_to_iob2
from parsing_helpers import write_treebank
from test_dependency_parsing_end_to_end import FAST as PARSER_FAST, TINY as PARSER_TINY, metrics
from test_span_ner_end_to_end import TRAIN as NER_TRAIN, write_corpus
from test_dip_end_to_end import DIP, TRAIN as DIGITS_TRAIN


def validate(data, checkpoint, *flags):
    result = run_cli("fairseq-validate", data, "--user-dir", USER_DIR, "--path", checkpoint, "--valid-subset", "test",
                     "--batch-size", 32, "--num-workers", 0, *flags)
    return metrics(result)


def predict(*args, check=True):
    return run_cli("fairseq-plugins-predict", *args, check=check)


# --- span NER -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ner(tmp_path_factory):
    """Checkpoints of both heads, fairseq-validate's test F1 of each, the test split; the classifier
    was trained on a copy of the data that is then removed."""
    root = tmp_path_factory.mktemp("ner")
    data = write_corpus(root / "data")
    runs = {}
    for head, updates in (("classifier", 150), ("instance", 80)):
        train_data = shutil.copytree(data, root / f"data-{head}")
        run_cli("fairseq-train", train_data, "--user-dir", USER_DIR, "--task", "span_ner", "--criterion", "span_ner",
                "--arch", "span_ner_bilstm", "--span-head", head, *NER_TRAIN, "--max-update", updates,
                "--save-dir", root / head)
        checkpoint = str(root / head / "checkpoint_last.pt")
        runs[head] = checkpoint, validate(train_data, checkpoint, "--task", "span_ner")["f1"], train_data
    shutil.rmtree(runs["classifier"][2])
    return runs, os.path.join(data, "test.conll")


def gold_tags(path):
    return [spans_to_iob2(s.entities, len(s.words)) for s in read_conll(path, "auto")]


def conll_output(text):
    """Sentences of ``token TAB tag`` output: ([words], [tags])."""
    blocks = [block.splitlines() for block in text.strip("\n").split("\n\n")]
    return [([line.split("\t")[0] for line in block], [line.split("\t")[1] for line in block]) for block in blocks]


@pytest.mark.parametrize("head", ["classifier", "instance"])
def test_ner_predict_gives_fairseq_validates_f1(ner, head, tmp_path):
    runs, test_file = ner
    checkpoint, f1, _ = runs[head]
    output = tmp_path / "test.predicted.conll"
    predict("--path", checkpoint, "--input", test_file, "--output", output, "--batch-size", 7)
    predicted = conll_output(output.read_text())
    gold = gold_tags(test_file)
    assert [words for words, _ in predicted] == [s.words for s in read_conll(test_file, "auto")]
    assert round(100 * f1_score(gold, [tags for _, tags in predicted], mode="strict", scheme=IOB2), 2) == f1
    assert f1 > 20  # a model that tags entities, not one predicting only O
    # The Python API: the same tags, and raw text (one sentence a line) tags as the CoNLL file does.
    sentences = [words for words, _ in predicted]
    tagger = hub.from_pretrained(os.path.dirname(checkpoint), checkpoint_file="checkpoint_last.pt")
    assert tagger.tag(sentences) == [tags for _, tags in predicted]
    raw = tmp_path / "test.txt"
    raw.write_text("".join(" ".join(words) + "\n" for words in sentences))
    assert conll_output(predict("--path", checkpoint, "--input", raw, "--user-dir", USER_DIR).stdout) == predicted


def test_ner_json_lines_and_explanations(ner):
    runs, test_file = ner
    checkpoint = runs["instance"][0]
    plain = conll_output(predict("--path", checkpoint, "--input", test_file).stdout)
    lines = predict("--path", checkpoint, "--input", test_file, "--json-lines").stdout.splitlines()
    explained = predict("--path", checkpoint, "--input", test_file, "--explain", 3).stdout.splitlines()
    assert len(lines) == len(explained) == len(plain)
    for (words, tags), line, explanation in zip(plain, lines, explained):
        result, explanation = json.loads(line), json.loads(explanation)
        assert result["words"] == words and result["tags"] == tags == explanation["tags"]
        assert spans_to_iob2([(e["start"], e["end"], e["label"]) for e in result["entities"]], len(words)) == tags
        assert all(0 < e["score"] <= 1 for e in result["entities"])
        for entity in explanation["entities"]:
            assert len(entity["neighbours"]) == 3 and entity["neighbours"][0]["score"] >= entity["neighbours"][-1]["score"]


def test_ner_instance_head_finds_its_data_directory(ner, tmp_path):
    """Moved data: a one-line error naming the training file and --data; with --data it predicts."""
    runs, test_file = ner
    checkpoint, _, data = runs["instance"]
    moved = shutil.move(data, tmp_path / "moved")
    try:
        one_line_error(predict("--path", checkpoint, "--input", test_file, check=False), "train.conll", "--data")
        assert predict("--path", checkpoint, "--input", test_file, "--data", moved).stdout
    finally:
        shutil.move(moved, data)


def test_ner_ensemble_averages_the_members_probabilities(ner):
    runs, test_file = ner
    paths = [runs["classifier"][0], runs["instance"][0]]
    sentences = [s.words for s in read_conll(test_file, "auto")][:8]
    ensemble = hub.load(paths, data=runs["instance"][2])
    members = [hub.load([path], data=runs["instance"][2]) for path in paths]
    dataset = members[0].task.dataset_of(members[0].sentences(sentences), "test")
    batch = dataset.collater([dataset[i] for i in range(len(dataset))])
    for member in members:
        member.task.prepare_for_inference(member.models[0])
    with torch.no_grad():
        mean = torch.stack([m.models[0](**batch["net_input"])[0].exp() for m in members]).mean(0)
    found = 0
    for row, result in enumerate(ensemble.predict(sentences)):
        for entity in result["entities"]:
            label = ensemble.task.label_index[entity["label"]]
            assert entity["score"] == pytest.approx(float(mean[row, entity["start"], entity["end"] - entity["start"], label]), rel=1e-5)
            found += 1
    assert found


def test_ner_input_errors_name_file_and_line(ner, tmp_path):
    checkpoint = ner[0]["classifier"][0]
    cases = {
        "bom.conll": (b"\xef\xbb\xbfJohn\nlives\n", "bom.conll:1: the file starts with a UTF-8 byte order mark"),
        "latin1.conll": (b"John\nZ\xfcrich\n", "latin1.conll:2: not UTF-8"),
        "comment.conll": (b"John\n# sent_id = 3\n", "comment.conll:2: '# sent_id = 3' looks like a comment line"),
    }
    for name, (content, message) in cases.items():
        (tmp_path / name).write_bytes(content)
        one_line_error(predict("--path", checkpoint, "--input", tmp_path / name, "--input-format", "conll", check=False), message)
    one_line_error(predict("--path", checkpoint, "--user-dir", tmp_path / "nowhere", check=False), "--user-dir", "no such directory")
    (tmp_path / "tagged.conll").write_text("# text = John lives\nJohn B-PER\n")
    with pytest.raises(ConfigError, match="tagged.conll:1: .* looks like a comment line"):
        read_conll(str(tmp_path / "tagged.conll"), "auto")


# --- dependency parsing -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def parsers(tmp_path_factory):
    """Weight- and instance-based parsers, fairseq-validate's test metrics of each; the weight-based
    parser's training directory is removed."""
    root = tmp_path_factory.mktemp("parsing")
    runs = {}
    for head in ("weight", "instance"):
        data = write_treebank(root / f"treebank-{head}")
        run_cli("fairseq-train", data, "--user-dir", USER_DIR, "--task", "dependency_parsing", "--criterion",
                "dependency_parsing", *PARSER_TINY, *PARSER_FAST, "--arc-head", head, "--label-head", head,
                "--max-epoch", 3, "--save-dir", root / head, "--no-epoch-checkpoints")
        checkpoint = str(root / head / "checkpoint_last.pt")
        runs[head] = checkpoint, validate(data, checkpoint, "--task", "dependency_parsing"), data
    test_file = shutil.copy(os.path.join(runs["weight"][2], "test.conllu"), root / "test.conllu")
    shutil.rmtree(runs["weight"][2])
    return runs, str(test_file)


def attachment_scores(gold_file, predicted_file):
    """UAS/LAS without punctuation, LAS with it, and LAS on universal relations with it (CoNLL 2018)."""
    counts = dict.fromkeys(("words", "heads", "labels", "words_punct", "labels_punct", "universal"), 0)
    for gold, predicted in zip(read_conllu(gold_file), read_conllu(predicted_file)):
        for form, head, label, predicted_head, predicted_label in zip(gold.form, gold.heads, gold.labels,
                                                                      predicted.heads, predicted.labels):
            right_head = head == predicted_head
            counts["words_punct"] += 1
            counts["labels_punct"] += right_head and label == predicted_label
            counts["universal"] += right_head and label.split(":")[0] == predicted_label.split(":")[0]
            if not is_punctuation(form):
                counts["words"] += 1
                counts["heads"] += right_head
                counts["labels"] += right_head and label == predicted_label
    return {"uas": round(100 * counts["heads"] / counts["words"], 2), "las": round(100 * counts["labels"] / counts["words"], 2),
            "las_punct": round(100 * counts["labels_punct"] / counts["words_punct"], 2),
            "las_ud": round(100 * counts["universal"] / counts["words_punct"], 2)}


@pytest.mark.parametrize("head", ["weight", "instance"])
def test_parsing_predict_gives_fairseq_validates_scores(parsers, head, tmp_path):
    runs, test_file = parsers
    checkpoint, scores, _ = runs[head]
    output = tmp_path / "test.predicted.conllu"
    predict("--path", checkpoint, "--input", test_file, "--output", output, "--batch-size", 5)
    assert attachment_scores(test_file, output) == {name: scores[name] for name in ("uas", "las", "las_punct", "las_ud")}
    assert scores["las"] > 20
    parser = hub.from_pretrained(os.path.dirname(checkpoint), checkpoint_file="checkpoint_last.pt")
    with open(test_file, encoding="utf-8") as file:
        assert parser.parse(file.read()) == output.read_text()


NEW_INPUT = """# sent_id = n1
# text = the dog sees a cat.
1\tthe\tthe\tDET\t_\tDefinite=Def\t_\t_\t_\t_
2\tdog\tdog\tNOUN\t_\tNumber=Sing\t_\t_\t_\tSpaceAfter=No
3-4\tseescat\t_\t_\t_\t_\t_\t_\t_\t_
3\tsees\tsee\tVERB\t_\t_\t_\t_\t_\t_
3.1\tx\tx\tX\t_\t_\t_\t_\t3:conj\t_
4\tcat\tcat\tNOUN\t_\t_\t_\t_\t_\tGloss=cat
5\t.\t.\tPUNCT\t_\t_\t_\t_\t_\t_

1\toften\toften\tADV\t_\t_\t0\troot\t_\t_
2\tthe\tthe\tDET\t_\t_\t0\troot\t_\t_
3\tman\tman\tNOUN\t_\t_\t0\troot\t_\t_
4\tbuilds\tbuild\tVERB\t_\t_\t0\troot\t_\t_
"""


@pytest.mark.parametrize("head", ["weight", "instance"])
def test_parsed_conllu_keeps_every_other_line_and_column(parsers, head, tmp_path):
    """Input with '_' heads and with 4 roots; output: one root per sentence, labelled root, on the word attached to 0."""
    checkpoint = parsers[0][head][0]
    (tmp_path / "new.conllu").write_text(NEW_INPUT)
    output = predict("--path", checkpoint, "--input", tmp_path / "new.conllu").stdout
    given, written = NEW_INPUT.strip("\n").split("\n"), output.strip("\n").split("\n")
    assert len(given) == len(written)
    for line, out in zip(given, written):
        columns, out_columns = line.split("\t"), out.split("\t")
        if line.startswith("#") or not line or not columns[0].isdigit():
            assert out == line
        else:
            assert out_columns[:6] + out_columns[8:] == columns[:6] + columns[8:]
    for sentence in read_conllu_text(output, tmp_path):
        assert sentence.heads.count(0) == 1
        assert [label == "root" for label in sentence.labels] == [head == 0 for head in sentence.heads]


def read_conllu_text(text, tmp_path):
    (tmp_path / "out.conllu").write_text(text)
    return read_conllu(str(tmp_path / "out.conllu"))


def test_parsing_ensemble_averages_head_then_label_probabilities(parsers, tmp_path):
    runs, test_file = parsers
    paths = [runs["weight"][0], runs["instance"][0]]
    ensemble = hub.load(paths)
    members = [hub.load([path]) for path in paths]
    sentences = read_conllu(test_file)[:6]
    dataset = members[0].task.dataset_of(sentences, "test")
    batch = dataset.collater([dataset[i] for i in range(len(dataset))])
    with torch.no_grad():
        for member in members:
            member.task.prepare_for_inference(member.models[0])
        outputs = [m.models[0](**batch["net_input"]) for m in members]
        lengths = batch["net_input"]["src_lengths"]
        arc_probs = torch.stack([arcs.softmax(-1) for arcs, _ in outputs]).mean(0)
        heads = members[0].models[0].decode_heads(arc_probs.log(), lengths)
        label_probs = torch.stack([m.models[0].label_scores(extra, heads).softmax(-1)
                                   for m, (_, extra) in zip(members, outputs)]).mean(0)
        labels = members[0].models[0].choose_labels(label_probs.log(), heads)
    expected = [(heads[row, 1:n].tolist(), [ensemble.task.labels[i] for i in labels[row, 1:n].tolist()])
                for row, n in enumerate(lengths.tolist())]
    assert ensemble.predict(sentences) == expected
    assert expected != members[0].predict(sentences) or expected != members[1].predict(sentences)


def test_a_non_root_word_never_gets_the_root_label():
    model = DependencyParser.__new__(DependencyParser)  # only choose_labels and root_label are used
    model.root_label = 1
    scores = torch.tensor([[[0.0, 0.0, 0.0], [0.0, 5.0, 1.0], [3.0, 9.0, 0.0], [0.0, 0.0, 2.0]]])
    heads = torch.tensor([[-1, 0, 1, 2]])
    # word 2 prefers root (9.0) but hangs from word 1: its best other label is 0; word 3 is attached
    # to 2 and keeps label 2; word 1, attached to 0, gets root.
    assert DependencyParser.choose_labels(model, scores, heads).tolist() == [[-1, 1, 0, 2]]


def test_las_ud_compares_universal_relations():
    labels = ["nmod", "nmod:poss", "obj", "punct"]
    sample = {"target": torch.tensor([[-1, 0, 1, 1]]), "labels": torch.tensor([[-1, 0, 2, 3]]),
              "scored": torch.tensor([[False, True, True, True]]), "punct": torch.tensor([[False, False, False, True]]),
              "net_input": {"src_lengths": torch.tensor([4])}}
    counts = attachment_counts(sample, torch.tensor([[-1, 0, 1, 1]]), torch.tensor([[-1, 1, 2, 3]]),
                               universal_label_indices(labels))
    assert (counts["labels_ok_punct"], counts["universal_labels_ok"], counts["words_punct"]) == (2, 3, 3)


def test_parsing_input_errors_name_file_and_line(parsers, tmp_path):
    checkpoint = parsers[0]["weight"][0]
    word = "1\tJohn\tjohn\tPROPN\t_\t_\t0\troot\t_\t_\n"
    cases = {
        "bom.conllu": (b"\xef\xbb\xbf" + word.encode(), "bom.conllu:1: the file starts with a UTF-8 byte order mark"),
        "latin1.conllu": (b"# text = Z\xfcrich\n" + word.encode(), "latin1.conllu:1: not UTF-8"),
        "columns.conllu": (b"1\tJohn\t_\n", "columns.conllu:1: expected 10 tab-separated CoNLL-U columns, got 3"),
    }
    for name, (content, message) in cases.items():
        (tmp_path / name).write_bytes(content)
        one_line_error(predict("--path", checkpoint, "--input", tmp_path / name, check=False), message)
    for digit in ("\u0661", "\u00b2"):  # ARABIC-INDIC DIGIT ONE, SUPERSCRIPT TWO: str.isdigit() is True for both
        (tmp_path / "digits.conllu").write_text(word + word.replace("1\tJohn", "2\tran").replace("\t0\troot", f"\t{digit}\tnsubj"))
        with pytest.raises(ConfigError, match=f"digits.conllu:2: HEAD '{digit}' is not a word index"):
            read_conllu(str(tmp_path / "digits.conllu"))


# --- image classification -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """sklearn digits as npz files; an MLP trained with cross entropy and one with DIP; the data
    directory is removed after fairseq-validate scored the test split."""
    from fairseq_plugins.tasks.image_classification import load_sklearn_digits

    root = tmp_path_factory.mktemp("digits")
    data = root / "data"
    data.mkdir()
    splits = load_sklearn_digits()
    for split, (images, labels) in splits.items():
        np.savez(data / f"{split}.npz", images=images, labels=labels)
    np.savez(root / "test-images.npz", images=splits["test"][0])
    flags = [data if flag == "." else flag for flag in DIGITS_TRAIN]
    flags[flags.index("sklearn_digits")] = "npz"
    runs = {}
    for name, criterion in (("erm", ["--criterion", "cross_entropy"]), ("erm2", ["--criterion", "cross_entropy", "--seed", 5]),
                            ("dip", DIP)):
        run_cli("fairseq-train", *flags, *criterion, "--save-dir", root / name)
        checkpoint = str(root / name / "checkpoint_last.pt")
        runs[name] = checkpoint, validate(data, checkpoint, "--task", "image_classification")["accuracy"]
    shutil.rmtree(data)
    return runs, str(root / "test-images.npz"), splits["test"][1]


def predicted_probabilities(text):
    return np.array([[float(p) for p in line.split("\t")[1].split()] for line in text.splitlines()])


@pytest.mark.parametrize("name", ["erm", "dip"])
def test_image_predictions_give_fairseq_validates_accuracy(digits, name):
    runs, images, labels = digits
    checkpoint, accuracy = runs[name]
    output = predict("--path", checkpoint, "--input", images, "--batch-size", 37).stdout
    predicted = np.array([int(line.split("\t")[0]) for line in output.splitlines()])
    assert round(100 * float((predicted == labels).mean()), 2) == accuracy and accuracy > 30
    assert np.allclose(predicted_probabilities(output).sum(1), 1, atol=1e-4)
    with np.load(images) as arrays:
        api = hub.load([checkpoint]).predict(arrays["images"])
    assert np.array_equal(api.argmax(1).numpy(), predicted)


def test_dip_eval_samples_change_the_predictor(digits):
    runs, images, _ = digits
    outputs = {s: predicted_probabilities(predict("--path", runs["dip"][0], "--input", images, "--dip-eval-samples", s).stdout)
               for s in (1, 5)}
    assert not np.allclose(outputs[1], outputs[5])
    one_line_error(predict("--path", runs["erm"][0], "--input", images, "--dip-eval-samples", 4, check=False),
                   "--dip-eval-samples", "cross_entropy")


def test_image_ensemble_is_the_mean_of_its_members(digits):
    runs, images, _ = digits
    members = [predicted_probabilities(predict("--path", runs[name][0], "--input", images).stdout) for name in ("erm", "erm2")]
    ensemble = predicted_probabilities(predict("--path", f"{runs['erm'][0]}:{runs['erm2'][0]}", "--input", images).stdout)
    assert np.allclose(ensemble, (members[0] + members[1]) / 2, atol=2e-6)
    assert not np.allclose(members[0], members[1], atol=1e-3)


def test_ensemble_members_need_one_task(digits, parsers):
    one_line_error(predict("--path", f"{digits[0]['erm'][0]}:{parsers[0]['weight'][0]}", "--input", digits[1], check=False),
                   "an ensemble needs one task")


# --- fairseq-validate without --task ------------------------------------------------------------

def test_fairseq_validate_without_task_uses_the_checkpoints_task(ner):
    """fairseq-validate with the user dir and no --task: the checkpoint's task, the F1 that --task
    span_ner gives (fairseq's own parser: KeyError: None)."""
    runs, test_file = ner
    checkpoint, f1, data = runs["instance"]
    result = run_cli("fairseq-validate", data, "--user-dir", USER_DIR, "--path", checkpoint,
                     "--valid-subset", "test", "--batch-size", "32", "--num-workers", "0")
    assert metrics(result)["f1"] == f1


# --- sentence classification --------------------------------------------------------------------

@pytest.fixture(scope="module")
def sentiment(tmp_path_factory):
    """fairseq's sentence_prediction with transformer_classifier (cross entropy and DIP) on the toy
    sentiment data of test_dip_sentence_prediction.py; the valid sentences as text."""
    from test_dip_sentence_prediction import FAST as SENTIMENT_FAST, TINY as SENTIMENT_TINY, write_sentiment

    root = tmp_path_factory.mktemp("sentiment")
    raw, data = root / "raw", root / "bin"
    for split, count in (("train", 300), ("valid", 61)):
        (raw / split).mkdir(parents=True)
        write_sentiment(raw / split, count, random.Random(split))
    for field in ("input0", "label"):
        run_cli("fairseq-preprocess", "--only-source", "--trainpref", raw / "train" / field,
                "--validpref", raw / "valid" / field, "--destdir", data / field, "--workers", 1)
    runs = {}
    for name, criterion in (("ce", ["sentence_prediction"]),
                            ("dip", ["dip_cross_entropy", "--dip-pool-size", 100, "--dip-train-samples", 2, "--dip-eval-samples", 3])):
        run_cli("fairseq-train", data, "--user-dir", USER_DIR, "--task", "sentence_prediction", *SENTIMENT_TINY,
                "--criterion", *criterion, "--max-epoch", 2, "--save-dir", root / name, *SENTIMENT_FAST)
        checkpoint = str(root / name / "checkpoint_last.pt")
        result = run_cli("fairseq-validate", data, "--user-dir", USER_DIR, "--task", "sentence_prediction", "--path",
                         checkpoint, "--batch-size", 17, "--num-workers", 0, "--criterion", criterion[0])
        runs[name] = checkpoint, metrics(result, "valid")["accuracy"]
    return runs, str(raw / "valid" / "input0"), (raw / "valid" / "label").read_text().split()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ce", "dip"])
def test_sentence_classes_give_fairseq_validates_accuracy(sentiment, name):
    runs, sentences, labels = sentiment
    checkpoint, accuracy = runs[name]
    output = predict("--path", checkpoint, "--input", sentences, "--batch-size", 10).stdout
    predicted = [line.split("\t")[0] for line in output.splitlines()]
    # fairseq's sentence_prediction logs one decimal, dip_cross_entropy two; one sentence is 1.6 points
    assert 100 * np.mean([p == gold for p, gold in zip(predicted, labels)]) == pytest.approx(accuracy, abs=0.05)
    assert accuracy > 50
    with open(sentences) as file:
        api = hub.load([checkpoint]).predict(file.read().splitlines())
    assert np.allclose(api.numpy(), predicted_probabilities(output), atol=1e-5)


def test_stdin_is_read_lazily_and_each_batch_written_when_done(ner):
    """As fairseq-interactive: a sentence typed on stdin is tagged before stdin is closed."""
    import subprocess
    import threading

    command = [os.path.join(BIN_DIR, "fairseq-plugins-predict"), "--path", ner[0]["classifier"][0], "--batch-size", "1"]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    watchdog = threading.Timer(60, process.kill)  # a reader waiting for the end of stdin would block forever
    watchdog.start()
    try:
        process.stdin.write("Mary lives in Paris .\n")
        process.stdin.flush()
        assert [process.stdout.readline().split("\t")[0] for _ in range(5)] == ["Mary", "lives", "in", "Paris", "."]
    finally:
        watchdog.cancel()
        process.stdin.close()
        process.wait(timeout=60)


# --- translation: fairseq's own hub -------------------------------------------------------------

def test_translation_through_fairseqs_hub(toy_bin, toy_raw, tmp_path):
    """A package architecture (b2t_transformer) loads in fairseq's hub with user_dir=, and after
    ``import fairseq_plugins`` without it."""
    from fairseq.models.transformer import TransformerModel

    from conftest import TRAIN_FLAGS

    run_cli("fairseq-train", toy_bin, "--user-dir", USER_DIR, *TRAIN_FLAGS, "--arch", "b2t_transformer",
            "--max-update", 5, "--save-dir", tmp_path, "--no-epoch-checkpoints")
    with open(os.path.join(toy_raw, "test.en")) as file:
        sentence = file.readline().strip()
    for user_dir in ({"user_dir": USER_DIR}, {}):  # the tests import fairseq_plugins: both routes work here
        model = TransformerModel.from_pretrained(str(tmp_path), checkpoint_file="checkpoint_last.pt",
                                                 data_name_or_path=toy_bin, **user_dir)
        assert isinstance(model.translate(sentence, beam=2), str)
