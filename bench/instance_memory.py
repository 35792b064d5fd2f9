"""Spans scored per second against a whole training set: chunked InstanceMemory versus one full matrix product.

Both compute the exact instance-based label distribution ``log sum_{j: y_j = y} softmax_j(q . m_j)``
of ``--queries`` spans against ``--memory`` stored spans (``--dim`` wide, ``--labels`` labels, the
null label holding ``--null-share`` of them, as in NER where most spans are not entities):

- naive: the full (Q, N) score matrix, then ``label_log_probs`` on it;
- chunked: ``InstanceMemory.label_log_probs`` streaming ``--chunk-size`` memory rows at a time.

Then the same for exact top-k (the explanations). Alternately for ``--rounds`` rounds; prints the
median spans per second of each, their ratio, the largest score block each holds, and the
largest difference between the two results::

    OMP_NUM_THREADS=1 python bench/instance_memory.py
    python bench/instance_memory.py --memory 1000000 --queries 4000   # CoNLL-2003-sized memory

Random vectors: the cost does not depend on their values.
"""

import argparse
import statistics
import time

import torch

from fairseq_plugins.modules.instance_memory import InstanceMemory, label_log_probs


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--memory", type=int, default=200_000, help="stored spans N (WNUT-16 train: ~193k)")
    parser.add_argument("--queries", type=int, default=2_000, help="spans scored per call Q")
    parser.add_argument("--dim", type=int, default=100, help="span vector size (the paper: 100)")
    parser.add_argument("--labels", type=int, default=11, help="labels, null included (WNUT-16: 11)")
    parser.add_argument("--null-share", type=float, default=0.97, help="share of stored spans with the null label")
    parser.add_argument("--chunk-size", type=int, default=8192, help="memory rows per chunk")
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    for name in ("memory", "queries", "dim", "labels", "chunk_size", "top_k", "rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def timed(function):
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def main(argv=None):
    args = parse_args(argv)
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(1, args.labels, (args.memory,), generator=generator)
    labels[torch.rand(args.memory, generator=generator) < args.null_share] = 0
    memory = InstanceMemory(args.labels)
    memory.add(torch.randn(args.memory, args.dim, generator=generator), labels, torch.arange(args.memory))
    queries = torch.randn(args.queries, args.dim, generator=generator)
    memory.vectors  # noqa: B018  (group by label once, outside the timings)

    def naive_probs():
        return label_log_probs(memory.similarities(queries), memory.labels, args.labels)

    def naive_top_k():
        return memory.similarities(queries).topk(args.top_k, dim=1)

    benchmarks = {
        "label probabilities": (naive_probs, lambda: memory.label_log_probs(queries, chunk_size=args.chunk_size)),
        f"top-{args.top_k}": (naive_top_k, lambda: memory.top_k(queries, args.top_k, chunk_size=args.chunk_size)),
    }
    print(f"memory {args.memory} spans x {args.dim} d, {args.labels} labels; {args.queries} query spans per call; "
          f"torch threads {torch.get_num_threads()}")
    for name, (naive, chunked) in benchmarks.items():
        times = {"naive": [], "chunked": []}
        for _ in range(args.rounds):
            naive_time, naive_result = timed(naive)
            chunked_time, chunked_result = timed(chunked)
            times["naive"].append(naive_time)
            times["chunked"].append(chunked_time)
        difference = (naive_result[0] - chunked_result[0]).abs().max().item()
        rates = {way: args.queries / statistics.median(values) for way, values in times.items()}
        blocks = {"naive": args.queries * args.memory, "chunked": args.queries * min(args.chunk_size, args.memory)}
        for way in ("naive", "chunked"):
            print(f"{name:20s} {way:8s} {rates[way]:10.0f} spans/s   score block {4 * blocks[way] / 2**20:8.1f} MiB")
        print(f"{name:20s} chunked / naive speed {rates['chunked'] / rates['naive']:.2f}x, "
              f"max |difference| {difference:.2e}")


if __name__ == "__main__":
    main()
