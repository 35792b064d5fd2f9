"""The two scoring memories of the instance-set protocol, measured side by side (tasks/instance_sets.py).

    python bench/instance_memory_modes.py DATA --path CKPT --json OUT.json [--drawn 50] [--rounds 2]

Validates CKPT (an instance-based model of any instance-set task: span NER, dependency parsing; the
task is the checkpoint's) on DATA's test split with ``fairseq-validate --inference-sentences 0`` (every training sentence, exact) and ``--inference-sentences N`` (N drawn
per batch, the authors' K = 50), alternately for ``--rounds`` rounds, one process each (CPU, the
command's own threads), and records per mode the median wall and CPU time (the process's, model
loading included), the largest peak RSS, and the metrics (both modes are deterministic).

Then the ESTIMATE for span NER on CoNLL-2003 dev against the whole training split, from the
streamed exact scoring rate measured here (``InstanceMemory.label_log_probs``, 100-d spans, chunks
of ``SCORE_ELEMENTS`` scores as the models use): about 3.6e11 similarity terms (1.2M training spans x 3e5 dev spans), against the
sampled mode's 50 sentences x ~85 spans per batch. An estimate, labelled so in the JSON.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import torch

from fairseq_plugins.cli.fairseq_runs import fairseq_command, last_validation
from fairseq_plugins.modules.instance_memory import InstanceMemory

CONLL_TRAIN_SPANS = 1.2e6  # spans of up to the paper's length in CoNLL-2003 train (14,041 sentences)
CONLL_TRAIN_SENTENCES = 14_041
CONLL_DEV_TERMS = 3.6e11  # dev spans x training spans
SPAN_DIM = 100
SCORES = ("uas", "las", "precision", "recall", "f1")  # what the JSON keeps of the validation line


def validate(data, checkpoint, drawn):
    """(wall seconds, CPU seconds, peak RSS in MiB, metrics) of one fairseq-validate process."""
    command = [*fairseq_command("validate"), data, "--user-dir", os.path.dirname(sys.modules["fairseq_plugins"].__file__),
               "--path", checkpoint, "--valid-subset", "test", "--batch-size", "64",
               "--cpu", "--num-workers", "0", "--inference-sentences", str(drawn)]
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"fairseq-validate --inference-sentences {drawn} failed: {output.strip().splitlines()[-1]}")
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, last_validation(output, "test")


def streamed_rate(memory_rows=200_000, queries=2_000):
    """Similarity terms per second of the exact streamed scoring (the NER head's test-time rule)."""
    generator = torch.Generator().manual_seed(0)
    memory = InstanceMemory(5)
    memory.add(torch.randn(memory_rows, SPAN_DIM, generator=generator), torch.randint(0, 5, (memory_rows,), generator=generator),
               torch.arange(memory_rows))
    memory.vectors  # noqa: B018  (group by label outside the timing)
    batch = torch.randn(queries, SPAN_DIM, generator=generator)
    start = time.perf_counter()
    memory.label_log_probs(batch)
    return memory_rows * queries / (time.perf_counter() - start)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data")
    parser.add_argument("--path", required=True, help="checkpoint of an instance-based model (NER or parsing)")
    parser.add_argument("--json", required=True, help="where the measurements go")
    parser.add_argument("--drawn", type=int, default=50, help="sentences drawn per batch in the sampled mode (default 50)")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    runs = {0: [], args.drawn: []}
    for _ in range(args.rounds):
        for drawn in runs:
            runs[drawn].append(validate(args.data, args.path, drawn))
    modes = {}
    for drawn, measured in runs.items():
        name = "all" if drawn == 0 else f"drawn_{drawn}"
        metrics = measured[-1][3]
        modes[name] = {"inference_sentences": drawn, "seconds_median": round(statistics.median(m[0] for m in measured), 2),
                       "cpu_seconds_median": round(statistics.median(m[1] for m in measured), 2),
                       "seconds": [round(m[0], 2) for m in measured], "peak_rss_mib": round(max(m[2] for m in measured), 1),
                       "metrics": {name: value for name, value in metrics.items() if name in SCORES}}
    rate = streamed_rate()
    spans_per_sentence = CONLL_TRAIN_SPANS / CONLL_TRAIN_SENTENCES
    dev_spans = CONLL_DEV_TERMS / CONLL_TRAIN_SPANS
    sampled_terms = dev_spans * args.drawn * spans_per_sentence
    estimate = {
        "what": "ESTIMATE, not a run: span NER scoring of CoNLL-2003 dev against its training spans, from the "
                "similarity terms per second of InstanceMemory.label_log_probs measured here (one process, CPU)",
        "terms_per_second_measured": round(rate),
        "all": {"similarity_terms": CONLL_DEV_TERMS, "hours": round(CONLL_DEV_TERMS / rate / 3600, 2),
                "memory_vectors_mib": round(CONLL_TRAIN_SPANS * SPAN_DIM * 4 / 2 ** 20)},
        f"drawn_{args.drawn}": {"similarity_terms": round(sampled_terms), "hours": round(sampled_terms / rate / 3600, 4),
                                "memory_vectors_mib": round(args.drawn * spans_per_sentence * SPAN_DIM * 4 / 2 ** 20, 2)},
    }
    report = {"checkpoint": args.path, "torch_threads": torch.get_num_threads(), "modes": modes,
              "conll2003_dev_estimate": estimate}
    with open(args.json, "w") as file:
        json.dump(report, file, indent=1)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
