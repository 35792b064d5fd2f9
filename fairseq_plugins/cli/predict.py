"""``fairseq-plugins-predict``: a trained model (or an ensemble) on new input, from the checkpoint alone.

    fairseq-plugins-predict --path CKPT[:CKPT...] [--input FILE|-] [--output FILE|-] \\
        [--input-format auto|conll|text|conllu|npz] [--json-lines] [--batch-size 32] [--explain K] \\
        [--data DIR] [--dip-eval-samples S] [--user-dir DIR] [--cpu]

The checkpoint's task decides what is read and written (``fairseq_plugins/hub.py`` does the work;
words and labels come from the checkpoint, so the training data directory is not needed, except by
instance-based heads, whose memory is the training sentences: their saved data directory, or
``--data DIR``):

- ``span_ner``: ``--input-format conll`` (one token a line, its first column, so a labelled file
  works too; a blank line between sentences) or ``text`` (one sentence a line, tokens split at
  whitespace); ``auto`` (default) reads CoNLL unless the first line has several fields and its
  last one is not a tag (``O``, ``B-X``...). Output: CoNLL IOB2, ``token TAB tag``, a blank line
  after each sentence.
- ``dependency_parsing``: CoNLL-U (HEAD/DEPREL may be ``_``; existing ones are replaced). Output:
  the same CoNLL-U with HEAD and DEPREL of every word filled in; comments, multiword tokens, empty
  nodes and all other columns untouched. One ``root`` per sentence, on the word attached to 0.
- ``sentence_prediction`` (fairseq's, e.g. with ``transformer_classifier``): one sentence a line,
  in the dictionary's tokens (the text prepared as the training data was, BPE included: the task
  stores no tokenizer); its dictionaries come from the data directory saved in the checkpoint
  (or ``--data``). Output as for images, with the label dictionary's names.
- ``image_classification``: an ``.npz`` holding ``images`` (N x H x W or N x C x H x W, as the
  task reads them; no labels). Output: per image, the predicted class, a tab, and the class
  probabilities. ``--dip-eval-samples S``: a DIP checkpoint predicts as its criterion evaluates,
  averaging S mixes with its reference pool.

``--json-lines``: one JSON object per sentence or image instead. ``--explain K`` (instance-based
models; JSON lines): the K training instances behind each prediction. ``--path a.pt:b.pt``: an
ensemble of checkpoints of one task and vocabulary, their probabilities averaged before decoding.
Text input is read lazily and each batch of ``--batch-size`` sentences is written when it is done,
as fairseq-interactive does, so ``-`` (stdin) works interactively.
"""

import itertools
import json
import sys

import numpy as np
import torch

from fairseq_plugins.cli.common import add_user_dir, command_parser, import_user_dir, setup_logging
from fairseq_plugins.errors import ConfigError
from fairseq_plugins.options import bounded

INPUT_FORMATS = ("auto", "conll", "text", "conllu", "npz")


def parse_args(argv=None):
    parser = command_parser("fairseq-plugins-predict", __doc__)
    parser.add_argument("--path", required=True, metavar="CKPT[:CKPT...]", help="checkpoint(s); several: an ensemble")
    parser.add_argument("--input", default="-", metavar="FILE", help="input file (default -: stdin)")
    parser.add_argument("--output", default="-", metavar="FILE", help="output file (default -: stdout)")
    parser.add_argument("--input-format", default="auto", choices=INPUT_FORMATS, metavar="FORMAT",
                        help=f"one of {', '.join(INPUT_FORMATS)} (default auto: from the task and the first line)")
    parser.add_argument("--json-lines", action="store_true", help="one JSON object per sentence or image")
    parser.add_argument("--batch-size", type=bounded(int, ">= 1"), default=32,
                        help="sentences or images per batch (default 32)")
    parser.add_argument("--explain", type=bounded(int, ">= 0"), default=0, metavar="K",
                        help="instance-based models: the K training instances behind each prediction (JSON lines)")
    parser.add_argument("--data", metavar="DIR", help="data directory with the training file (instance heads; default: "
                        "the one saved in the checkpoint)")
    parser.add_argument("--dip-eval-samples", type=bounded(int, ">= 1"), metavar="S",
                        help="DIP checkpoints: mixes averaged per example")
    add_user_dir(parser)
    parser.add_argument("--cpu", action="store_true", help="stay on the CPU even when CUDA is available")
    args = parser.parse_args(argv)
    args.paths = [path for path in args.path.split(":") if path]
    if not args.paths:
        parser.error(f"--path {args.path!r}: give a checkpoint, or several separated by ':'")
    return args


def chunks(items, size):
    items = iter(items)
    while chunk := list(itertools.islice(items, size)):
        yield chunk


def looks_like_conll(first_line):
    from fairseq_plugins.data.conll_ner import DOCSTART, TAG

    fields = first_line.split()
    return len(fields) == 1 or fields[0] == DOCSTART or bool(TAG.match(fields[-1]))


def ner_sentences(args, lines):
    from fairseq_plugins.data.conll_ner import raw_text_sentences, untagged_conll_sentences

    input_format = args.input_format
    if input_format not in ("auto", "conll", "text"):
        raise ConfigError(f"--input-format {input_format}: a span_ner model reads conll or text")
    if input_format == "auto":
        lines, seen = iter(lines), []
        for numbered in lines:
            seen.append(numbered)
            if numbered[1].split():
                break
        else:
            return iter(())
        input_format = "conll" if looks_like_conll(seen[-1][1]) else "text"
        lines = itertools.chain(seen, lines)
    if input_format == "conll":
        return untagged_conll_sentences(lines, args.input_name)
    return raw_text_sentences(lines)


def predict_ner(predictor, args, lines, out):
    for chunk in chunks(ner_sentences(args, lines), args.batch_size):
        if args.explain:
            results = predictor.explain(chunk, args.explain, args.batch_size, args.input_name)
        else:
            results = predictor.predict(chunk, args.batch_size, args.input_name)
        for result in results:
            if args.json_lines or args.explain:
                out.write(json.dumps(result, ensure_ascii=False) + "\n")
            else:
                out.write("".join(f"{word}\t{tag}\n" for word, tag in zip(result["words"], result["tags"])) + "\n")
        out.flush()


def predict_parses(predictor, args, lines, out):
    from fairseq_plugins.data.conllu_treebank import sentences_to_parse

    if args.input_format not in ("auto", "conllu"):
        raise ConfigError(f"--input-format {args.input_format}: a dependency_parsing model reads conllu")
    for blocks in chunks(sentences_to_parse(args.input_name, lines), args.batch_size):
        if args.explain:
            for result in predictor.explain(blocks, args.explain, args.batch_size, args.input_name):
                out.write(json.dumps(result, ensure_ascii=False) + "\n")
        elif args.json_lines:
            sentences = [s for s, _ in blocks if s is not None]
            for s, (heads, labels) in zip(sentences, predictor.predict(sentences, args.batch_size, args.input_name)):
                out.write(json.dumps({"sentence": s.name, "words": s.form, "heads": heads, "labels": labels},
                                     ensure_ascii=False) + "\n")
        else:
            out.write("".join(line + "\n" for line in predictor.parse_blocks(blocks, args.batch_size, args.input_name)))
        out.flush()


def write_classes(predictor, probabilities, args, out):
    for row in probabilities.tolist():
        label = predictor.labels[int(np.argmax(row))]
        if args.json_lines:
            out.write(json.dumps({"label": label, "probabilities": dict(zip(predictor.labels, row))}, ensure_ascii=False) + "\n")
        else:
            out.write(f"{label}\t{' '.join(f'{p:.6g}' for p in row)}\n")
    out.flush()


def predict_sentence_classes(predictor, args, lines, out):
    if args.input_format not in ("auto", "text"):
        raise ConfigError(f"--input-format {args.input_format}: a sentence_prediction model reads text (a sentence a line)")
    if args.explain:
        raise ConfigError("--explain: sentence classifiers have no instance-based explanations")
    count = 0
    for chunk in chunks(lines, args.batch_size):
        for number, line in chunk:
            if not line.strip():
                raise ConfigError(f"{args.input_name}:{number}: an empty line (one sentence a line)")
        sentences = [line for _, line in chunk]
        write_classes(predictor, predictor.predict(sentences, args.batch_size, args.input_name, count), args, out)
        count += len(chunk)


def predict_images(predictor, args, out):
    if args.input_format not in ("auto", "npz"):
        raise ConfigError(f"--input-format {args.input_format}: an image_classification model reads npz")
    if args.explain:
        raise ConfigError("--explain: image classifiers have no instance-based explanations")
    if args.input == "-":
        raise ConfigError("--input: give the .npz file of images (an array 'images'); stdin is not read for images")
    try:
        with np.load(args.input) as arrays:
            if "images" not in arrays.files:
                raise ConfigError(f"{args.input} has no array 'images' (it holds {', '.join(arrays.files)})")
            images = arrays["images"]
    except (OSError, ValueError) as error:
        raise ConfigError(f"--input {args.input}: not an .npz file ({error})") from None
    write_classes(predictor, predictor.predict(images, args.batch_size, args.input), args, out)


def main(argv=None):
    args = parse_args(argv)
    setup_logging(quiet=True)  # fairseq's modules configure INFO when imported
    import_user_dir(args.user_dir)
    from fairseq_plugins import hub
    from fairseq_plugins.data.text_input import numbered_lines

    predictor = hub.load(args.paths, args.data, args.dip_eval_samples)
    if torch.cuda.is_available() and not args.cpu:
        predictor.to("cuda")
    args.input_name = "<stdin>" if args.input == "-" else args.input
    if args.output == "-":
        sys.stdout.reconfigure(encoding="utf-8")
    out = sys.stdout if args.output == "-" else open(args.output, "w", encoding="utf-8")
    try:
        if isinstance(predictor, hub.SpanTagger):
            predict_ner(predictor, args, numbered_lines(args.input), out)
        elif isinstance(predictor, hub.Parser):
            predict_parses(predictor, args, numbered_lines(args.input), out)
        elif isinstance(predictor, hub.SentenceClassifier):
            predict_sentence_classes(predictor, args, numbered_lines(args.input), out)
        else:
            predict_images(predictor, args, out)
    finally:
        if out is not sys.stdout:
            out.close()


if __name__ == "__main__":
    main()
