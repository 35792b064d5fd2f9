"""Decoding speed of ``alone_transformer`` over ``transformer``: fairseq-generate sentences/s, side by side.

1. A toy corpus (fairseq_plugins/synthetic_translation.py) binarized over one joined dictionary
   padded with unused dummy words to ``--vocab-size``: the toy grammar has a few hundred words,
   real vocabularies 32k-40k, and what ALONE costs per decoding step grows with V.
2. ``transformer`` and ``alone_transformer`` of the quickstart's size (2+2 layers, d=128, ffn 512,
   shared embeddings; ALONE's D_inter defaults to 4d) trained by fairseq-train for ``--max-update``
   updates with the same data and seed (fairseq_plugins/cli/quickstart.py).
3. fairseq-generate (beam 4) on the test split with each checkpoint, alternately for ``--rounds``
   rounds, the order flipping every round. ``--min-len`` equal to ``--max-len-b`` (and
   ``--max-len-a 0``) makes every hypothesis exactly ``--length`` tokens, so both models do the same
   decoding work however little they were trained. Speed is fairseq-generate's own sentences/s,
   which times generation only (not start-up or checkpoint loading); median over rounds.

Prints both speeds and their ratio alone / transformer::

    OMP_NUM_THREADS=1 python bench/alone_inference.py
    OMP_NUM_THREADS=1 python bench/alone_inference.py --json > bench/results/alone_inference.json

``--table-check`` instead times, on one thread, what each use of the kept table costs in evaluation
(comparing every parameter and buffer with the copy kept beside it) against computing the table,
at the quickstart's size and at the paper's WMT size (V=32k, d=512, D_inter=8192).
"""

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time

import torch

from fairseq_plugins.cli.fairseq_runs import fairseq_command, run_fairseq
from fairseq_plugins.cli.toy_experiment import train
from fairseq_plugins.cli.user_dir import user_dir
from fairseq_plugins.modules.alone import AloneEmbedding
from fairseq_plugins.synthetic_translation import write_corpus

ARCHS = ("transformer", "alone_transformer")
# (V, d, D_inter): the quickstart's size with this bench's vocabulary, and the paper's WMT En-De size.
TABLE_SIZES = ((8000, 128, 512), (32000, 512, 8192))
SPEED = re.compile(r"Translated [\d,]+ sentences \([\d,]+ tokens\) in [\d.]+s \(([\d.]+) sentences/s")
# fairseq-generate, with torch's lazy import of sympy (~0.5 s) done before its timer starts: torch
# does it at the first attention over padding, inside the timer, for a standard model, and while
# building ALONE embeddings (nn.utils.skip_init), before the timer; either way it is no decoding cost.
GENERATE = [sys.executable, "-c", "import runpy, torch.fx.experimental.symbolic_shapes; "
            "runpy.run_module('fairseq_cli.generate', run_name='__main__')"]


def log(message):
    print(message, file=sys.stderr, flush=True)


def padded_dictionary(raw_dir, path, vocab_size):
    """Every word of the corpus, then dummy words up to ``vocab_size`` symbols with fairseq's 4 specials."""
    words = {}
    for name in sorted(os.listdir(raw_dir)):
        with open(os.path.join(raw_dir, name), encoding="utf-8") as f:
            for word in f.read().split():
                words[word] = words.get(word, 0) + 1
    dummies = vocab_size - 4 - len(words)
    if dummies < 0:
        sys.exit(f"--vocab-size must be at least {len(words) + 4}, the corpus's words and fairseq's 4 specials")
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(f"{word} {count}\n" for word, count in words.items())
        f.writelines(f"dummy{i} 0\n" for i in range(dummies))


def binarized_toy_corpus(work, vocab_size, test_sentences, train_sentences=2000):
    """The toy corpus under ``work``, binarized over a joined dictionary padded to ``vocab_size``
    (also used by bench/gpu.sh); returns the data directory."""
    raw = write_corpus(os.path.join(work, "raw"), (("train", train_sentences), ("valid", 100), ("test", test_sentences)))
    dictionary, data = os.path.join(work, "dict.txt"), os.path.join(work, "data-bin")
    padded_dictionary(raw, dictionary, vocab_size)
    run_fairseq(fairseq_command("preprocess") + [
        "--source-lang", "en", "--target-lang", "xx", "--joined-dictionary", "--srcdict", dictionary,
        "--trainpref", f"{raw}/train", "--validpref", f"{raw}/valid", "--testpref", f"{raw}/test",
        "--destdir", data, "--workers", "1",
    ], os.path.join(work, "preprocess.log"))
    return data


def trained_checkpoints(work, data, max_update):
    checkpoints = {}
    for arch in ARCHS:
        log(f"training {arch} for {max_update} updates")
        save_dir = os.path.join(work, arch)
        train(data, save_dir, ["--arch", arch], max_update, 1, work, name=f"train-{arch}")
        checkpoints[arch] = os.path.join(save_dir, "checkpoint_last.pt")
    return checkpoints


def sentences_per_second(data, checkpoint, args):
    command = GENERATE + [
        data, "--user-dir", user_dir(), "--path", checkpoint, "--gen-subset", "test", "--beam", "4",
        "--batch-size", str(args.batch_size), "--max-len-a", "0", "--max-len-b", str(args.length),
        "--min-len", str(args.length), "--quiet",
    ]
    log = os.path.join(os.path.dirname(checkpoint), "generate.log")
    run_fairseq(command, log)
    with open(log) as f:
        match = SPEED.search(f.read())
    if not match:
        sys.exit(f"{log}: fairseq-generate logged no speed")
    return float(match.group(1))


def seconds_per_call(call, repeats):
    start = time.perf_counter()
    for _ in range(repeats):
        call()
    return (time.perf_counter() - start) / repeats


@torch.no_grad()
def table_check_cost(vocab_size, dim, inter_dim, repeats=50):
    """Milliseconds per use of the kept table (the check that it is current) and per computation of it."""
    embedding = AloneEmbedding(vocab_size, dim, 1, inter_dim=inter_dim).eval()
    embedding.embedding_matrix()  # computed and kept
    check = seconds_per_call(embedding.embedding_matrix, repeats)

    def compute():
        embedding.train().eval()  # train() frees the kept table
        embedding.embedding_matrix()

    compute_seconds = seconds_per_call(compute, 2)
    return {"vocab": vocab_size, "dim": dim, "inter_dim": inter_dim, "check_ms": 1e3 * check,
            "compute_ms": 1e3 * compute_seconds, "compute_over_check": compute_seconds / check}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vocab-size", type=int, default=8000, help="joined dictionary size V")
    parser.add_argument("--sentences", type=int, default=200, help="test sentences translated per run")
    parser.add_argument("--length", type=int, default=20, help="tokens of every hypothesis")
    parser.add_argument("--batch-size", type=int, default=50, help="sentences per generation batch")
    parser.add_argument("--max-update", type=int, default=1, help="training updates of each model")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")
    parser.add_argument("--table-check", action="store_true",
                        help="time the kept table's check against computing it (one thread), instead")
    args = parser.parse_args(argv)
    if args.table_check:
        torch.set_num_threads(1)
        for sizes in TABLE_SIZES:
            print(json.dumps(table_check_cost(*sizes)))
        return

    with tempfile.TemporaryDirectory() as work:
        data = binarized_toy_corpus(work, args.vocab_size, args.sentences)
        checkpoints = trained_checkpoints(work, data, args.max_update)
        speeds = {arch: [] for arch in ARCHS}
        for round_index in range(args.rounds):
            for arch in ARCHS if round_index % 2 == 0 else ARCHS[::-1]:
                speeds[arch].append(sentences_per_second(data, checkpoints[arch], args))
                log(f"round {round_index + 1}: {arch} {speeds[arch][-1]:.2f} sentences/s")
    report = {
        "setup": f"quickstart size (2+2 layers, d=128), V={args.vocab_size}, {args.sentences} sentences, "
                 f"beam 4, batch {args.batch_size}, {args.length} tokens each, {args.rounds} alternating rounds",
        "sentences_per_second": {arch: statistics.median(values) for arch, values in speeds.items()},
        "rounds": speeds,
    }
    median = report["sentences_per_second"]
    report["ratio"] = median["alone_transformer"] / median["transformer"]
    if args.json:
        print(json.dumps(report, indent=1))
        return
    print(f"{report['setup']}\nfairseq-generate: alone_transformer {median['alone_transformer']:.2f} / "
          f"transformer {median['transformer']:.2f} sentences/s = ratio {report['ratio']:.3f}")


if __name__ == "__main__":
    main()
