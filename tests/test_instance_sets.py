"""The instance-set protocol (tasks/instance_sets.py, models/instance_based.py), once for both tasks:
which training sentences the memories hold after a training step and when scoring, and when a
memory filled for scoring is filled again.

Models and tasks are built through fairseq's API from command-line flags on tiny generated data;
each training step is the task's real ``train_step`` (the loss's backward, no optimizer).
"""

import copy
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from parsing_helpers import write_treebank
from test_second_device import build
from test_span_ner_end_to_end import write_corpus

TASKS = {
    "span_ner": ["--task", "span_ner", "--criterion", "span_ner", "--arch", "span_ner_bilstm", "--span-head", "instance",
                 "--encoder-embed-dim", 16, "--encoder-hidden-dim", 16, "--span-dim", 16, "--max-span-length", 3],
    "dependency_parsing": ["--task", "dependency_parsing", "--criterion", "dependency_parsing",
                           "--arch", "dependency_parser_bilstm", "--encoder-embed-dim", 16, "--encoder-hidden-dim", 16,
                           "--mlp-dim", 16, "--edge-dim", 16],
}
TRAIN_SENTENCES = 30
K = 5


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("instance_sets")
    return {"span_ner": write_corpus(root / "ner", (("train", TRAIN_SENTENCES, "iob2"), ("valid", 4, "iob2"))),
            "dependency_parsing": write_treebank(root / "parsing", (("train", TRAIN_SENTENCES), ("valid", 4)))}


@pytest.fixture(params=list(TASKS))
def instance_task(request, data):
    """``(task, model, criterion)`` of an untrained instance-based model; ``model.encodings`` counts
    the batches of training sentences the task has had it encode."""
    _, task, model, criterion = build(data[request.param], *TASKS[request.param], "--instance-sentences", K)
    count_encodings(model)
    return task, model, criterion


def count_encodings(model):
    encode = model.encode_instances
    model.encodings = 0

    def counted(batch):
        model.encodings += 1
        return encode(batch)

    model.encode_instances = counted


def training_step(task, model, criterion, batch_ids, update):
    train = task.train_dataset()
    batch = train.collater([train[i] for i in batch_ids])
    task.train_step(batch, model.train(), criterion, SimpleNamespace(backward=lambda loss: loss.backward()), update)


def sentences_in_memories(model):
    """The training sentences whose instances each memory holds."""
    return {name: set(memory.ids[:, 0].tolist()) for name, memory in model.instance_memories().items()}


def test_a_training_step_holds_k_sentences_outside_the_batch_and_scoring_the_training_split(instance_task):
    task, model, criterion = instance_task
    training_step(task, model, criterion, [0, 1, 2], update=1)
    for sentences in sentences_in_memories(model).values():
        assert len(sentences) == K and not sentences & {0, 1, 2}
    task.prepare_for_inference(model.eval())
    assert set(map(frozenset, sentences_in_memories(model).values())) == {frozenset(range(TRAIN_SENTENCES))}


def test_a_memory_filled_for_scoring_serves_until_the_next_training_step(instance_task):
    task, model, criterion = instance_task
    task.prepare_for_inference(model.eval())
    filled = model.encodings
    task.prepare_for_inference(model)
    valid = task.load_dataset("valid")
    task.valid_step(valid.collater([valid[0]]), model, criterion)
    assert model.encodings == filled  # nothing changed the weights: the memory is not encoded again
    copy_of_model = copy.deepcopy(model)  # e.g. an EMA copy: scored, never trained itself
    count_encodings(copy_of_model)
    training_step(task, model, criterion, [0], update=1)
    task.prepare_for_inference(model.eval())
    task.prepare_for_inference(copy_of_model)
    # both are filled again after the task's training step, the copy too (it may follow the weights)
    assert model.encodings > filled and copy_of_model.encodings > 0


def test_sampled_sentences_depend_on_the_seed_and_update_only_and_are_in_index_order(instance_task):
    task, _, _ = instance_task
    batch = torch.tensor([3, 7])
    drawn = task.sample_instance_sentences(batch, 12)
    assert np.array_equal(drawn, task.sample_instance_sentences(batch, 12))  # a resumed run draws the same
    assert not np.array_equal(drawn, task.sample_instance_sentences(batch, 13))
    assert list(drawn) == sorted(drawn) and len(drawn) == K
    # all sentences asked for: the sample is the scoring memory's sentences less the batch, in the same order
    task.cfg.instance_sentences = TRAIN_SENTENCES
    assert list(task.sample_instance_sentences(batch, 12)) == [i for i in task.inference_sentences() if i not in (3, 7)]


def test_sampled_scoring_memory_is_seeded_per_batch_and_differs_from_the_whole_training_split(instance_task):
    task, model, criterion = instance_task
    every = task.inference_sentences(torch.tensor([0, 1]))
    assert list(every) == list(range(TRAIN_SENTENCES))  # the default, 0: every training sentence
    task.cfg.inference_sentences = 4
    drawn = task.inference_sentences(torch.tensor([2, 0, 1]))
    assert len(drawn) == 4 and list(drawn) == sorted(drawn)
    assert np.array_equal(drawn, task.inference_sentences(torch.tensor([0, 1, 2])))  # the batch, in any order
    assert not np.array_equal(drawn, task.inference_sentences(torch.tensor([0, 1, 3])))
    # scoring a batch fills the memories with its drawn sentences, and again for another batch
    valid = task.load_dataset("valid")
    task.valid_step(valid.collater([valid[0], valid[1]]), model.eval(), criterion)
    expected = set(task.inference_sentences(torch.tensor([0, 1])).tolist())
    assert all(sentences == expected for sentences in sentences_in_memories(model).values())
    filled = model.encodings
    task.valid_step(valid.collater([valid[2]]), model, criterion)
    assert model.encodings > filled
    assert all(sentences == set(task.inference_sentences(torch.tensor([2])).tolist())
               for sentences in sentences_in_memories(model).values())
