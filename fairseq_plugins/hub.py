"""Use models trained with this package on new input: load once, predict many (fairseq's hub convention).

    from fairseq_plugins import hub
    tagger = hub.from_pretrained("checkpoints/ner", checkpoint_file="checkpoint_best.pt")
    tagger.tag([["John", "lives", "in", "Paris"]])     # [["B-PER", "O", "O", "B-LOC"]]
    parser = hub.from_pretrained("checkpoints/parser")
    parser.parse(open("new.conllu").read())            # the CoNLL-U text with HEAD and DEPREL filled in
    classifier = hub.from_pretrained("checkpoints/digits", checkpoint_file="a.pt:b.pt")
    classifier.predict(images)                         # (N, C) probabilities, the mean of a.pt's and b.pt's

``checkpoint_file`` may name several checkpoints separated by ':' (an ensemble: probabilities are
averaged, for span NER the span label distributions and for parsing the head and then the label
distributions, before decoding). ``data_name_or_path``: the data directory, only needed by
instance-based heads whose training file has moved (their memory is the training sentences;
otherwise the checkpoint's saved one is used); words and labels travel with the checkpoint.
``.explain(..., top_k)`` names the training instances behind each prediction of an instance-based
model. Translation models load with fairseq's own hub (``TransformerModel.from_pretrained(...,
user_dir=fairseq_plugins.cli.user_dir.user_dir())``, or after ``import fairseq_plugins``).
"""

import math
import os

import numpy as np
import torch

from fairseq_plugins.cli.checkpoints import checkpoint_task_name, load_checkpoint
from fairseq_plugins.data.sentences import batches_in_index_order, on_device
from fairseq_plugins.errors import ConfigError
from fairseq_plugins.modules.spans import decode


def from_pretrained(model_name_or_path, checkpoint_file="checkpoint_best.pt", data_name_or_path=None, **kwargs):
    """The predictor of the checkpoint(s) ``checkpoint_file`` (':'-separated) in ``model_name_or_path``."""
    paths = [os.path.join(model_name_or_path, name) for name in checkpoint_file.split(":") if name]
    return load(paths, data_name_or_path, **kwargs)


def load(paths, data=None, dip_eval_samples=None):
    """The predictor of checkpoint ``paths`` (one, or several for an ensemble) by their task."""
    import fairseq_plugins  # noqa: F401  (fills fairseq's registries)
    from fairseq_plugins.cli.ensemble import base_task

    names = [checkpoint_task_name(path) for path in paths]
    name = base_task(names[0])  # a ticket_ task predicts as its base task
    for path, other in zip(paths, names):
        if other != names[0]:
            raise ConfigError(f"--path: {path} was trained with task {other}, {paths[0]} with {names[0]}; "
                              "an ensemble needs one task")
    if name not in PREDICTORS:
        raise ConfigError(f"--path {paths[0]}: task {name} has no predictor here ({', '.join(PREDICTORS)} have); "
                          "translation and language models: fairseq-interactive or fairseq-generate")
    overrides = {}
    if dip_eval_samples is not None:
        overrides["dip_eval_samples"] = dip_eval_samples
    members = [load_checkpoint(path, data, overrides) for path in paths]
    for (_, cfg, _), path in zip(members, paths):
        if dip_eval_samples is not None and cfg.criterion._name != "dip_cross_entropy":
            raise ConfigError(f"--dip-eval-samples: {path} was trained with --criterion {cfg.criterion._name}, "
                              "not dip_cross_entropy; leave the flag out")
    return PREDICTORS[name](members, paths)


class Predictor:
    """Members ``[(model, cfg, task)]`` of one task and one vocabulary."""

    def __init__(self, members, paths):
        self.members, self.paths = members, paths
        self.models = [model for model, _, _ in members]
        self.task = members[0][2]
        for (_, _, task), path in zip(members[1:], paths[1:]):
            if self.vocabulary(task) != self.vocabulary(self.task):
                raise ConfigError(f"--path: {path} and {paths[0]} have different vocabularies or label sets; "
                                  "ensemble members must share them")

    @staticmethod
    def vocabulary(task):
        words, labels, _ = task.vocabulary()
        return list(words.symbols), labels

    @property
    def device(self):
        return next(self.models[0].parameters()).device

    def to(self, device):
        for model in self.models:
            model.to(device)
        return self

    def need_training_file(self):
        for (model, _, task), path in zip(self.members, self.paths):
            if model.uses_instances:
                if not os.path.exists(task.training_file):
                    raise ConfigError(f"--path {path}: {task.training_file} does not exist; an instance head scores "
                                      "against its training sentences: pass --data DIR, the directory holding the "
                                      "training file it was trained on")

    def prepare_members(self):
        """Eval mode; an instance-based member's memories hold its training sentences (tasks/instance_sets.py)."""
        for model, _, task in self.members:
            task.prepare_for_inference(model.eval())

    def refuse_ensemble_explanations(self):
        if len(self.models) > 1:
            raise ConfigError("--explain: explanations are per model; give one checkpoint in --path")


def mean_log_probs(log_probs):
    """log of the mean of the members' probabilities; one member's log-probabilities as they are."""
    if len(log_probs) == 1:
        return log_probs[0]
    return torch.logsumexp(torch.stack(log_probs), 0) - math.log(len(log_probs))


class SpanTagger(Predictor):
    """Span NER: ``tag(sentences) -> IOB2 tags``, ``predict`` -> entities with scores, ``explain``."""

    @staticmethod
    def vocabulary(task):
        return (*Predictor.vocabulary(task), task.cfg.max_span_length)  # the label grids must have one shape

    def sentences(self, token_lists):
        from fairseq_plugins.data.conll_ner import Sentence

        if token_lists and isinstance(token_lists[0], Sentence):
            return list(token_lists)
        return [Sentence(list(words), [], number) for number, words in enumerate(token_lists, 1)]

    @torch.no_grad()
    def predict(self, token_lists, batch_size=32, path="<input>"):
        """Per sentence ``{"words", "tags", "entities": [{"start", "end" (inclusive), "label", "score"}]}``."""
        self.need_training_file()
        dataset = self.task.dataset_of(self.sentences(token_lists), path)
        self.prepare_members()
        results = []
        for batch in batches_in_index_order(dataset, batch_size):
            batch = on_device(batch, self.device)
            log_probs = mean_log_probs([model(**batch["net_input"])[0] for model in self.models])
            lengths = batch["net_input"]["src_lengths"]
            for index, spans, length in zip(batch["id"].tolist(), decode(log_probs, lengths), lengths.tolist()):
                results.append({
                    "words": dataset.sentences[index].words,
                    "tags": self.task.predicted_tags(spans, length),
                    "entities": [{"start": start, "end": end, "label": self.task.labels[label], "score": math.exp(score)}
                                 for start, end, label, score in spans],
                })
        return results

    def tag(self, token_lists, batch_size=32):
        return [result["tags"] for result in self.predict(token_lists, batch_size)]

    def explain(self, token_lists, top_k=5, batch_size=32, path="<input>"):
        """``predict``'s results, each entity with ``neighbours``: the ``top_k`` most similar training spans."""
        self.refuse_ensemble_explanations()
        self.need_training_file()
        dataset = self.task.dataset_of(self.sentences(token_lists), path)
        report = self.task.explain(self.models[0], dataset, top_k, batch_size)
        results = [{"words": s.words, "tags": None, "entities": []} for s in dataset.sentences]
        for p in report["predictions"]:
            results[p["sentence"]]["entities"].append(
                {"start": p["start"], "end": p["end"], "label": p["label"], "neighbours": p["neighbours"]})
        for result in results:
            spans = [(e["start"], e["end"], self.task.label_index[e["label"]], 0.0) for e in result["entities"]]
            result["tags"] = self.task.predicted_tags(spans, len(result["words"]))
        return results


class Parser(Predictor):
    """Dependency parsing: ``parse(conllu text) -> conllu text``, ``predict`` -> heads and labels, ``explain``."""

    def blocks(self, text, path="<input>"):
        from fairseq_plugins.data.conllu_treebank import sentences_to_parse

        return list(sentences_to_parse(path, enumerate(text.splitlines(), 1)))

    @torch.no_grad()
    def predict(self, sentences, batch_size=32, path="<input>"):
        """``(heads, labels)`` of each of ``sentences`` (the task's Sentence tuples; heads 1-based, 0: root)."""
        self.need_training_file()
        dataset = self.task.dataset_of(sentences, path)
        self.prepare_members()
        results = []
        for batch in batches_in_index_order(dataset, batch_size):
            batch = on_device(batch, self.device)
            lengths = batch["net_input"]["src_lengths"]
            outputs = [model(**batch["net_input"]) for model in self.models]
            first = self.models[0]
            if len(self.models) == 1:
                heads, labels = first.parse(*outputs[0], lengths)
            else:
                heads = first.decode_heads(mean_log_probs([arcs.log_softmax(-1) for arcs, _ in outputs]), lengths)
                labels = first.choose_labels(mean_log_probs(
                    [model.label_scores(extra, heads).log_softmax(-1) for model, (_, extra) in zip(self.models, outputs)]), heads)
            for row, length in enumerate(lengths.tolist()):
                results.append((heads[row, 1:length].tolist(), [self.task.labels[i] for i in labels[row, 1:length].tolist()]))
        return results

    def parse_blocks(self, blocks, batch_size=32, path="<input>"):
        """The output lines of ``blocks`` (``sentences_to_parse``'s), sentence after sentence, a blank line after each."""
        from fairseq_plugins.data.conllu_treebank import with_parse

        parsed = iter(self.predict([s for s, _ in blocks if s is not None], batch_size, path))
        for sentence, block in blocks:
            yield from with_parse(block, *next(parsed)) if sentence is not None else block
            yield ""

    def parse(self, text, batch_size=32):
        """CoNLL-U text (HEAD/DEPREL may be ``_``) with HEAD and DEPREL of every word filled in; comments,
        multiword tokens, empty nodes and every other column as they were."""
        return "".join(line + "\n" for line in self.parse_blocks(self.blocks(text), batch_size))

    def explain(self, blocks_or_text, top_k=5, batch_size=32, path="<input>"):
        """Per sentence ``{"sentence": sent_id, "arcs": [...]}``: each predicted arc with the ``top_k``
        training edges that contribute most to its score (``task.explain``'s predictions)."""
        self.refuse_ensemble_explanations()
        self.need_training_file()
        blocks = self.blocks(blocks_or_text) if isinstance(blocks_or_text, str) else blocks_or_text
        sentences = [s for s, _ in blocks if s is not None]
        report = self.task.explain(self.models[0], self.task.dataset_of(sentences, path), top_k, batch_size)
        arcs = {}
        for p in report["predictions"]:
            for gold in ("gold_head", "gold_label"):  # new input has none
                del p[gold]
            arcs.setdefault(p["sentence"], []).append(p)
        return [{"sentence": s.name, "arcs": arcs.get(s.name, [])} for s in sentences]


class Classifier(Predictor):
    """What image and sentence classifiers share: the members' probabilities, averaged."""

    @torch.no_grad()
    def mean_probabilities(self, net_input, ids):
        net_input = on_device(net_input, self.device)
        return torch.stack([self.probabilities(model, cfg, net_input, ids) for model, cfg, _ in self.members]).mean(0).cpu()

    def probabilities(self, model, cfg, net_input, ids):
        """Softmax of the model's logits; a DIP checkpoint: its criterion's S-sample predictor, whose draws
        depend on the example's index (``ids``), as in fairseq-validate on a split in the same order."""
        from fairseq import criterions

        from fairseq_plugins.cli.ensemble import model_outputs

        if cfg.criterion._name == "dip_cross_entropy":
            criterion = criterions.build_criterion(cfg.criterion, self.task)
            return criterion.log_probs(model, net_input, ids).float().exp()
        return model_outputs(model, cfg, net_input).softmax(-1)


class ImageClassifier(Classifier):
    """image_classification: ``predict(images (N, [C,] H, W), uint8 or float) -> (N, C) probabilities``."""

    @staticmethod
    def vocabulary(task):
        return task.num_classes

    @property
    def labels(self):
        return [str(i) for i in range(self.task.num_classes)]

    def predict(self, images, batch_size=64, where="images"):
        images = np.asarray(images)
        if images.ndim == 3:
            images = images[:, None]
        if tuple(images.shape[1:]) != self.task.image_shape:
            raise ConfigError(f"{where}: images of shape {tuple(images.shape[1:])}; the model was trained on "
                              f"{self.task.image_shape} (C x H x W)")
        pixels = torch.from_numpy(images)
        pixels = pixels.float().div_(255) if pixels.dtype == torch.uint8 else pixels.float()
        probabilities = [self.mean_probabilities({"images": pixels[start:start + batch_size]},
                                                 torch.arange(start, min(start + batch_size, len(pixels))))
                         for start in range(0, len(pixels), batch_size)]
        return torch.cat(probabilities) if probabilities else torch.empty(0, self.task.num_classes)


class SentenceClassifier(Classifier):
    """fairseq's sentence_prediction: ``predict(sentences) -> (N, C) probabilities``. A sentence is a
    line of the dictionary's tokens, i.e. text prepared as the training data was (BPE applied, as
    before fairseq-preprocess): the task stores no tokenizer. Its dictionaries are read from the
    data directory (fairseq's task keeps them there, not in the checkpoint)."""

    def __init__(self, members, paths):
        super().__init__(members, paths)
        if self.task.cfg.regression_target:
            raise ConfigError(f"--path {paths[0]}: a regression head; fairseq-plugins-predict serves classifiers")

    @staticmethod
    def vocabulary(task):
        return list(task.source_dictionary.symbols), list(task.label_dictionary.symbols)

    @property
    def labels(self):
        labels = self.task.label_dictionary
        return [labels[i + labels.nspecial] if i + labels.nspecial < len(labels) else str(i)
                for i in range(self.task.cfg.num_classes)]

    def encode(self, sentence, where):
        words = self.task.source_dictionary
        tokens = words.encode_line(sentence, add_if_not_exist=False, append_eos=True).long()
        if self.task.cfg.init_token is not None:
            tokens = torch.cat([torch.tensor([self.task.cfg.init_token]), tokens])
        if len(tokens) > self.task.cfg.max_positions:
            raise ConfigError(f"{where}: {len(tokens)} tokens, more than the model's --max-positions {self.task.cfg.max_positions}")
        return tokens

    def predict(self, sentences, batch_size=32, where="<input>", first_id=0):
        from fairseq.data import data_utils

        probabilities = []
        for start in range(0, len(sentences), batch_size):
            tokens = [self.encode(s, f"{where}:{first_id + start + i + 1}")  # sentence k: line k of a file
                      for i, s in enumerate(sentences[start:start + batch_size])]
            net_input = {"src_tokens": data_utils.collate_tokens(tokens, self.task.source_dictionary.pad()),
                         "src_lengths": torch.tensor([len(t) for t in tokens])}
            probabilities.append(self.mean_probabilities(net_input, torch.arange(first_id + start, first_id + start + len(tokens))))
        return torch.cat(probabilities) if probabilities else torch.empty(0, len(self.labels))


PREDICTORS = {"span_ner": SpanTagger, "dependency_parsing": Parser, "image_classification": ImageClassifier,
              "sentence_prediction": SentenceClassifier}
