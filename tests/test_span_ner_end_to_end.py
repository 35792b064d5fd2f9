"""span_ner through the real CLIs on a tiny generated corpus: both heads train, resume and evaluate;
F1 in fairseq-validate equals the per-type report's; explanations name real training spans; bad
input stops with one line.

The corpus: template sentences with person, location and organisation names of 1 to 3 tokens,
train.conll in IOB2, valid.conll in IOB1, test.conll in BIOES (all three readers in one run);
the test split holds names never seen in training (unknown words).
"""

import json
import os
import random
import re
from types import SimpleNamespace

import pytest
import torch

from conftest import USER_DIR, build_through_namespace_api, one_line_error, run_cli
from fairseq_plugins.cli.checkpoints import load_checkpoint, load_split
from fairseq_plugins.data.sentences import batches_in_index_order
from fairseq_plugins.errors import ConfigError
from fairseq_plugins.tasks.span_ner import SpanNerConfig, SpanNerTask

NAMES = {
    "PER": ["John Smith", "Mary", "Ali Khan", "Chen Wei", "Anna", "Pedro Alvarez Ruiz", "Yuki", "Omar"],
    "LOC": ["Paris", "New York", "Tokyo", "Rio de Janeiro", "Cairo", "Lima", "Oslo", "Cape Town"],
    "ORG": ["Acme Corp", "Globex", "Initech", "United Nations", "Red Cross", "Umbrella Inc"],
}
UNSEEN = {"PER": ["Zorblax Quint"], "LOC": ["Vrellintown"], "ORG": ["Qwyzzle Labs"]}
TEMPLATES = [
    "{PER} lives in {LOC} .", "{ORG} hired {PER} last week .", "yesterday {PER} flew to {LOC} with {PER} .",
    "the {ORG} office in {LOC} is closed .", "we met {PER} at the {ORG} party", "{LOC} is far from {LOC}",
    "nothing happened today .", "i think {PER} likes it",
]
TRAIN = ["--optimizer", "adam", "--lr", "5e-3", "--batch-size", 16, "--num-workers", 0, "--no-progress-bar",
         "--log-format", "simple", "--log-interval", 10, "--seed", 1, "--no-epoch-checkpoints",
         "--encoder-embed-dim", 32, "--encoder-hidden-dim", 32, "--span-dim", 32, "--dropout", 0.1,
         "--instance-sentences", 20, "--max-span-length", 4]


def sentence(rng, names):
    template = rng.choice(TEMPLATES)
    words, entities = [], []
    for piece in template.split():
        if piece.startswith("{"):
            kind = piece[1:-1]
            name = rng.choice(names[kind]).split()
            entities.append((len(words), len(words) + len(name) - 1, kind))
            words.extend(name)
        else:
            words.append(piece)
    return words, entities


def tags(length, entities, scheme):
    result = ["O"] * length
    for start, end, kind in entities:
        for position in range(start, end + 1):
            prefix = "B" if position == start else "I"
            if scheme == "bioes":
                prefix = "S" if start == end else "B" if position == start else "E" if position == end else "I"
            elif scheme == "iob1" and position == start:
                prefix = "I"  # IOB1: B- only between two adjacent entities of one type (none here)
            result[position] = f"{prefix}-{kind}"
    return result


def write_corpus(directory, sizes=(("train", 300, "iob2"), ("valid", 40, "iob1"), ("test", 40, "bioes"))):
    rng = random.Random(0)
    os.makedirs(directory, exist_ok=True)
    for split, count, scheme in sizes:
        names = {kind: NAMES[kind] + (UNSEEN[kind] if split == "test" else []) for kind in NAMES}
        lines = ["-DOCSTART- -X- O", ""]
        for _ in range(count):
            words, entities = sentence(rng, names)
            lines.extend(f"{word} X {tag}" for word, tag in zip(words, tags(len(words), entities, scheme)))
            lines.append("")
        with open(os.path.join(directory, f"{split}.conll"), "w") as file:
            file.write("\n".join(lines) + "\n")
    return str(directory)


# Pretrained vectors (word2vec's text format: a header line, 32 d) for two training words ("mary" reaches
# "Mary" lowercased) and a test word never seen in training ("Vrellintown" reaches it lowercased).
VECTORS = {"Paris": [0.5] * 32, "mary": [-0.25] * 32, "vrellintown": [0.125] * 32}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    data = write_corpus(tmp_path_factory.mktemp("ner") / "data")
    with open(os.path.join(data, "vectors.txt"), "w") as file:
        file.write(f"{len(VECTORS)} 32\n" + "".join(f"{word} {' '.join(map(str, vector))}\n" for word, vector in VECTORS.items()))
    return data


def logged(result, name):
    return [float(value) for value in re.findall(rf"\| {name} ([\d.]+)", result.stdout + result.stderr)]


def read_train_spans(data):
    """(sentence id, start, end) -> label of train.conll's entities (IOB2), and its sentences."""
    sentences, labels, words, current = [], {}, [], []
    with open(os.path.join(data, "train.conll")) as file:
        for line in file:
            columns = line.split()
            if columns and columns[0] != "-DOCSTART-":
                current.append((columns[0], columns[-1]))
            elif current:
                sentences.append(current)
                current = []
    for index, rows in enumerate(sentences):
        start = None
        for position, (_, tag) in enumerate(rows + [("", "O")]):
            if start is not None and not tag.startswith("I-"):
                labels[(index, start, position - 1)] = rows[start][1][2:]
                start = None
            if tag.startswith("B-"):
                start = position
    return labels, [[word for word, _ in rows] for rows in sentences]


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory):
    """``trained(head, *flags) -> (save dir, first run, resumed run)``: 40 updates, then resumed to 60."""
    runs = {}

    def train(head, *extra):
        if (head, extra) not in runs:
            save_dir = tmp_path_factory.mktemp(head)
            flags = [flag.format(corpus=corpus) for flag in extra]
            common = [corpus, "--user-dir", USER_DIR, "--task", "span_ner", "--criterion", "span_ner",
                      "--span-head", head, *TRAIN, *flags, "--save-dir", save_dir]
            first = run_cli("fairseq-train", *common, "--max-update", 40)
            runs[head, extra] = save_dir, first, run_cli("fairseq-train", *common, "--max-update", 60)
        return runs[head, extra]

    return train


@pytest.mark.parametrize("head, extra", [
    ("classifier", ("--arch", "span_ner_bilstm", "--word-embeddings", "{corpus}/vectors.txt", "--freeze-word-embeddings",
                    "--char-filters", "8", "--char-embed-dim", "8", "--lr", "1e-2")),  # (chars: more parameters, a higher lr)
    ("instance", ("--arch", "span_ner_bilstm")),
    pytest.param("instance", ("--arch", "span_ner_transformer", "--similarity", "cosine", "--encoder-embed-dim", "32"),
                 marks=pytest.mark.slow),
])
def test_train_resume_validate_report(corpus, trained, head, extra):
    save_dir, first, second = trained(head, *extra)
    assert logged(first, "f1"), "validation inside fairseq-train logs f1"
    assert "Loaded checkpoint" in second.stdout and "@ 40 updates" in second.stdout and "num_updates 60" in second.stdout
    in_training = logged(second, "f1")[-1]
    # the checkpoint evaluates on its own, from another directory: only DATA and the file (not the vector file)
    vectors = os.path.join(corpus, "vectors.txt")
    os.rename(vectors, vectors + ".away")
    try:
        validate = run_cli("fairseq-validate", corpus, "--user-dir", USER_DIR, "--task", "span_ner",
                           "--path", save_dir / "checkpoint_last.pt", "--valid-subset", "valid,test", "--batch-size", 7,
                           "--num-workers", 0, cwd="/")
    finally:
        os.rename(vectors + ".away", vectors)
    valid_f1, test_f1 = logged(validate, "f1")
    assert valid_f1 == in_training  # the same memory, rebuilt from train.conll, gives the same scores
    assert test_f1 > 50  # names of 1-3 tokens, unseen test names included: clearly learnt
    if "--word-embeddings" in extra:  # copied in when training started, frozen, kept in the checkpoint
        state = torch.load(save_dir / "checkpoint_last.pt", weights_only=False)
        words, first = state["task_state"]["words"], state["task_state"]["first_pretrained"]  # the checkpoint's vocabulary
        for word, vector in (("Paris", VECTORS["Paris"]), ("Mary", VECTORS["mary"]), ("vrellintown", VECTORS["vrellintown"])):
            torch.testing.assert_close(state["model"]["encoder.embed_tokens.pretrained"][words.index(word) - first],
                                       torch.tensor(vector))
        _, _, task = load_checkpoint(str(save_dir / "checkpoint_last.pt"))
        assert task.words.index("Vrellintown") == words.index("vrellintown")  # a test-only word keeps its vector
    report_file = save_dir / "report.json"
    report = run_cli("fairseq-plugins-ner-report", corpus, "--path", save_dir / "checkpoint_last.pt", "--json", report_file)
    rows = json.loads(report_file.read_text())["report"]
    assert set(rows) >= {"PER", "LOC", "ORG", "micro avg"} and "PER" in report.stdout
    assert round(rows["micro avg"]["f1-score"], 2) == test_f1
    assert [round(rows["micro avg"][k], 2) for k in ("precision", "recall")] == [
        logged(validate, "precision")[1], logged(validate, "recall")[1]]


@pytest.fixture(scope="module")
def instance_checkpoint(trained):
    return trained("instance", "--arch", "span_ner_bilstm")[0] / "checkpoint_last.pt"


def test_explanations_name_real_training_spans(corpus, instance_checkpoint, tmp_path):
    out = tmp_path / "explain.json"
    result = run_cli("fairseq-plugins-explain", corpus, "--path", instance_checkpoint, "--valid-subset", "test", "--top-k", 3,
                     "--json", out, "--print", 2)
    report = json.loads(out.read_text())
    train_labels, train_words = read_train_spans(corpus)
    predictions = report["predictions"]
    assert len(predictions) > 40 and "plausibility" in result.stdout
    for prediction in predictions:
        assert len(prediction["neighbours"]) == 3
        for neighbour in prediction["neighbours"]:
            key = (neighbour["sentence"], neighbour["start"], neighbour["end"])
            assert neighbour["label"] == train_labels.get(key, "O")  # the label the memory holds is the gold one
            assert neighbour["text"] == " ".join(train_words[key[0]][key[1]:key[2] + 1])
    by_sentence = {}
    for prediction in predictions:  # decoded output: no two spans of a sentence overlap
        by_sentence.setdefault(prediction["sentence"], []).append((prediction["start"], prediction["end"]))
    for spans in by_sentence.values():
        covered = [t for start, end in spans for t in range(start, end + 1)]
        assert len(covered) == len(set(covered))
    summary = report["summary"]
    assert summary["plausibility"] > summary["label_prior"]
    # every span of at most L = 4 tokens of every training sentence, null ones included
    assert summary["memory_spans"] == sum(max(0, len(words) - width + 1) for words in train_words for width in range(1, 5))


def test_instance_probabilities_sum_to_one_and_unknown_words(corpus, instance_checkpoint):
    model, cfg, task = load_checkpoint(str(instance_checkpoint), data=corpus)
    dataset = load_split(task, cfg, "test")
    unknown = sum((tokens == task.words.unk()).sum().item() for tokens in dataset.tokens)
    assert unknown > 0  # the test split's unseen names map to <unk> and are scored like any word
    for batch, log_probs, decoded in task.predict(model, dataset, batch_size=16):
        inside = batch["target"] >= 0
        torch.testing.assert_close(log_probs[inside].exp().sum(-1), torch.ones(int(inside.sum())))
        assert all(label != 0 for sentence in decoded for _, _, label, _ in sentence)


def make_task(data, **overrides):
    return SpanNerTask.setup_task(SpanNerConfig(data=str(data), seed=1, **overrides))


@pytest.mark.parametrize("lines, message", [
    ("a O\nb\n", "train.conll:2: a token line needs the token and its tag (last column), got 'b'"),
    ("a O\nb B-PER\nc E-PER\n\nd Q-PER\n", "train.conll:5: tag 'Q-PER' is not O or one of B-TYPE, I-TYPE, E-TYPE, S-TYPE (BIOES)"),
    ("-DOCSTART- O\n\n\n", "train.conll: no sentences"),
])
def test_malformed_files_name_file_and_line(tmp_path, lines, message):
    (tmp_path / "train.conll").write_text(lines)
    with pytest.raises(ConfigError, match=re.escape(message)):
        make_task(tmp_path)


@pytest.mark.parametrize("overrides, message", [
    (dict(max_span_length=0), "--max-span-length must be >= 1 (got 0)"),
    (dict(instance_sentences=0), "--instance-sentences must be >= 1 (got 0)"),
    (dict(tag_scheme="iob3"), "--tag-scheme must be one of auto, iob1, iob2, bioes (got 'iob3')"),
])
def test_bad_task_flags(corpus, overrides, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        make_task(corpus, **overrides)


def test_sentence_longer_than_max_positions(corpus):
    task = make_task(corpus, max_positions=5)
    with pytest.raises(ConfigError, match=r"valid\.conll:\d+: a sentence of \d+ tokens is longer than --max-positions 5"):
        task.load_dataset("valid")


def test_bad_input_is_one_line_in_fairseq_train(tmp_path):
    data = write_corpus(tmp_path / "data", (("train", 20, "iob2"), ("valid", 5, "iob2")))
    with open(os.path.join(data, "valid.conll"), "a") as file:
        file.write("word\n")
    result = run_cli("fairseq-train", data, "--user-dir", USER_DIR, "--task", "span_ner", "--arch", "span_ner_bilstm",
                     "--criterion", "span_ner", "--batch-size", 4, "--max-update", 1, "--save-dir", tmp_path, check=False)
    one_line_error(result, "valid.conll:44: a token line needs the token and its tag (last column), got 'word'")


@pytest.mark.parametrize("arch, encoder", [("span_ner_bilstm", "bilstm"), ("span_ner_transformer", "transformer")])
def test_presets_build_through_the_namespace_api(corpus, arch, encoder):
    args, model = build_through_namespace_api(corpus, "span_ner", arch, "--criterion", "span_ner")
    assert (args.encoder_type, args.span_head, args.span_dim) == (encoder, "instance", 100)
    assert sum(p.numel() for p in model.parameters()) > 0


def test_training_instances_are_the_sentences_outside_the_batch(corpus):
    from fairseq import tasks
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf
    from fairseq.options import get_training_parser, parse_args_and_arch

    args = parse_args_and_arch(get_training_parser(), [corpus, "--user-dir", USER_DIR, "--task", "span_ner", "--arch",
                                                       "span_ner_bilstm", "--criterion", "span_ner", "--span-head",
                                                       "instance", "--instance-sentences", "1000"])
    cfg = convert_namespace_to_omegaconf(args)
    task = tasks.setup_task(cfg.task)
    model, criterion = task.build_model(cfg.model), task.build_criterion(cfg.criterion)
    dataset = task.load_dataset("train")
    batch = dataset.collater([dataset[i] for i in (0, 4, 7)])
    task.train_step(batch, model, criterion, SimpleNamespace(backward=lambda loss: loss.backward()), 1)
    # more instance sentences asked for than there are: every training sentence but the batch's
    assert set(model.memory.ids[:, 0].tolist()) == set(range(len(dataset))) - {0, 4, 7}


def sentence_blocks(text):
    return [block + "\n\n" for block in text.strip("\n").split("\n\n")]


@pytest.mark.parametrize("head", ["classifier", "instance"])
def test_a_checkpoint_maps_words_and_labels_whatever_train_conll_now_holds(tmp_path, head):
    """Training leaves DATA as it was (read-only works); train.conll edited after training gives the
    same scores (the classifier maps words and labels from its checkpoint, without train.conll at
    all) or, for the instance head's memory, a one-line error naming the file."""
    data = write_corpus(tmp_path / "data", (("train", 60, "iob2"), ("valid", 10, "iob2"), ("test", 20, "bioes")))
    listing = sorted(os.listdir(data))
    os.chmod(data, 0o555)  # (root writes anyway: the listing is what tells)
    try:
        run_cli("fairseq-train", data, "--user-dir", USER_DIR, "--task", "span_ner", "--criterion", "span_ner",
                "--arch", "span_ner_bilstm", "--span-head", head, *TRAIN, "--max-update", 8, "--save-dir", tmp_path / "ck")
    finally:
        os.chmod(data, 0o755)
    assert sorted(os.listdir(data)) == listing
    checkpoint = str(tmp_path / "ck" / "checkpoint_last.pt")

    def f1():
        model, cfg, task = load_checkpoint(checkpoint)
        dataset = load_split(task, cfg, "test")
        criterion = task.build_criterion(cfg.criterion)
        outputs = [task.valid_step(batch, model, criterion)[2] for batch in batches_in_index_order(dataset, 16)]
        return [sum(output[key] for output in outputs) for key in ("ner_tp", "ner_pred", "ner_gold")]

    before = f1()
    train_file = os.path.join(data, "train.conll")
    with open(train_file) as file:
        blocks = sentence_blocks(file.read())
    edits = {"15 duplicates": blocks + blocks[1:16], "20 removed": blocks[:1] + blocks[21:],
             "new words": blocks + [blocks[1].replace(" X ", "x X ")] * 2}
    for edit, lines in edits.items():
        with open(train_file, "w") as file:
            file.write("".join(lines))
        if head == "instance":  # (fairseq-validate prints it as one line: the parsing test)
            with pytest.raises(ConfigError, match=f"{train_file} is not the file this checkpoint was trained on"):
                f1()
        else:
            assert f1() == before, edit
    if head == "classifier":
        os.remove(train_file)
        assert f1() == before
