"""Training throughput of each method's architecture over its baseline, at identical size.

Comparisons (``--compare``, default all):

- ``b2t``:   ``b2t_transformer``            over fairseq's stock ``transformer``
- ``shape``: ``shape_transformer`` (K=40)   over ``composable_transformer`` (sinusoidal APE)
- ``alone``: ``alone_transformer`` (binary) over ``transformer`` (standard embeddings); also the
  parameter ratio and the peak memory of building the embeddings at V=32k, d=512
- ``alone_chunks`` (not in ``all``): one training step of ALONE embeddings and their tied output
  projection at the paper's WMT size (V=32k, d=512, D_inter=8192), the V x d matrix computed in
  vocabulary chunks recomputed in the backward (the default) over in one piece: target tokens/s
  and peak memory (peak RSS on CPU, peak allocated on CUDA). Each round runs each setting in a
  fresh process, which measures the peak of its first update on ``--batch-size`` x ``--length``
  random words and times ``--steps`` more

Both models of a pair are built by fairseq from the same flags, trained on the same
random batches with Adam, and timed alternately in one process: each round times
``--steps`` updates of one model then of the other, the order flipping every round,
so drifts of the machine's speed hit both alike. Prints target tokens per second
of each (median over rounds) and their ratio::

    python bench/throughput.py                      # CPU-sized default
    python bench/throughput.py --layers 6 --dim 512 --ffn 2048 --heads 8 --batch-size 128 --device cuda
    OMP_NUM_THREADS=1 python bench/throughput.py --compare alone_chunks --rounds 1 --steps 1   # ~2 min on 2 cores
"""

import argparse
import json
import multiprocessing
import statistics
import time
from concurrent.futures import ProcessPoolExecutor

import torch
import torch.nn.functional as F

from fairseq_plugins.cli.dataless import model_from_flags
from fairseq_plugins.cli.gradnorm import random_batch
from fairseq_plugins.cli.params import count_parameters
from fairseq_plugins.models.composable_transformer import TiedAloneProjection
from fairseq_plugins.modules.alone import CHUNK_SIZE, AloneEmbedding

COMPARISONS = {
    "b2t": (["--arch", "transformer"], ["--arch", "b2t_transformer"]),
    "shape": (["--arch", "composable_transformer"], ["--arch", "shape_transformer"]),
    "alone": (["--arch", "transformer"], ["--arch", "alone_transformer"]),
}
# alone_chunks: the ALONE paper's WMT En-De embeddings, and the chunk sizes compared.
ALONE_STEP_SIZE = {"vocab": 32_000, "dim": 512, "inter_dim": 8192}
CHUNK_SETTINGS = {"chunked": CHUNK_SIZE, "unchunked": None}


def build(arch_flags, args, device):
    flags = [
        *arch_flags, "--share-all-embeddings",
        "--encoder-layers", str(args.layers), "--decoder-layers", str(args.layers),
        "--encoder-embed-dim", str(args.dim), "--decoder-embed-dim", str(args.dim),
        "--encoder-ffn-embed-dim", str(args.ffn), "--decoder-ffn-embed-dim", str(args.ffn),
        "--encoder-attention-heads", str(args.heads), "--decoder-attention-heads", str(args.heads),
    ]
    torch.manual_seed(0)
    model = model_from_flags(flags, args.vocab_size).to(device).train()
    return model, torch.optim.Adam(model.parameters(), lr=1e-4)


def train_steps(model, optimizer, batch, steps, device):
    src_tokens, src_lengths, prev_output_tokens, target = batch
    synchronize = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        logits, _ = model(src_tokens, src_lengths, prev_output_tokens)
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), target.view(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    synchronize()
    return steps * target.numel() / (time.perf_counter() - start)


def compare(baseline_flags, candidate_flags, args, device):
    """Median target tokens/s of both models, timed alternately; and their parameter counts."""
    models = {"baseline": build(baseline_flags, args, device), "candidate": build(candidate_flags, args, device)}
    dictionary = models["baseline"][0].decoder.dictionary
    batch = [t.to(device) for t in random_batch(dictionary, args.batch_size, args.length, args.length, seed=1)]
    for model, optimizer in models.values():  # warm-up: allocator, kernels, Adam state
        train_steps(model, optimizer, batch, 2, device)
    speeds = {name: [] for name in models}
    for round_index in range(args.rounds):
        order = list(models) if round_index % 2 == 0 else list(models)[::-1]
        for name in order:
            speeds[name].append(train_steps(*models[name], batch, args.steps, device))
    result = {name: statistics.median(values) for name, values in speeds.items()}
    result["ratio"] = result["candidate"] / result["baseline"]
    result["parameters"] = {name: count_parameters(model)["total"] for name, (model, _) in models.items()}
    return result


def peak_rss_growth_mib(work):
    """Growth of the process's peak RSS (Linux VmHWM, reset first) while ``work()`` runs.

    Memory that earlier work in this process freed stays mapped and would be reused unseen: measure
    early in a process, or in a fresh one.
    """

    def peak_bytes():
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))

    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the high-water mark to the current RSS
    before = peak_bytes()
    work()
    return (peak_bytes() - before) / 2**20


def peak_memory_of_building_alone(vocab=32_000, dim=512):
    """Peak RSS growth while building ALONE embeddings, run before anything else; a V x d float32
    table allocated the same way afterwards shows what the measure sees."""
    AloneEmbedding(1000, dim, 1)  # warm-up: lazy imports, allocator arenas
    return {"build_peak_mib": peak_rss_growth_mib(lambda: AloneEmbedding(vocab, dim, 1)),
            "vocab_by_dim_table_peak_mib": peak_rss_growth_mib(lambda: torch.ones(vocab, dim))}


def alone_training_steps(chunk_size, tokens, steps, device):
    """Run in a fresh process: ALONE embeddings of ``ALONE_STEP_SIZE`` with ``chunk_size``, their tied
    output projection, cross-entropy and Adam on ``tokens`` random words. Returns the peak memory
    (MiB) of the first update and the target tokens/s of ``steps`` more."""
    device = torch.device(device)
    torch.manual_seed(0)
    size = ALONE_STEP_SIZE
    embedding = AloneEmbedding(size["vocab"], size["dim"], 1, inter_dim=size["inter_dim"], chunk_size=chunk_size)
    embedding = embedding.to(device).train()
    projection, optimizer = TiedAloneProjection(embedding), torch.optim.Adam(embedding.parameters(), lr=1e-4)
    words, target = torch.randint(4, size["vocab"], (2, tokens), device=device)

    def update():
        loss = F.cross_entropy(projection(embedding(words)), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        update()
        torch.cuda.synchronize(device)
        peak = (torch.cuda.max_memory_allocated(device) - before) / 2**20
    else:
        peak = peak_rss_growth_mib(update)
    start = time.perf_counter()
    for _ in range(steps):
        update()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return {"peak_memory_mib": peak, "tokens_per_s": steps * tokens / (time.perf_counter() - start)}


def compare_alone_chunks(args, device):
    """Chunked over unchunked: tokens/s (median over rounds) and peak memory, one process per run."""
    runs = {name: [] for name in CHUNK_SETTINGS}
    spawn = multiprocessing.get_context("spawn")  # fresh interpreters: no memory mapped by earlier runs
    for round_index in range(args.rounds):
        for name in CHUNK_SETTINGS if round_index % 2 == 0 else list(CHUNK_SETTINGS)[::-1]:
            with ProcessPoolExecutor(1, mp_context=spawn) as pool:
                runs[name].append(pool.submit(alone_training_steps, CHUNK_SETTINGS[name], args.batch_size * args.length,
                                              args.steps, str(device)).result())
    result = {name: {key: statistics.median(run[key] for run in values) for key in values[0]}
              for name, values in runs.items()}
    result["chunk_size"] = CHUNK_SIZE
    result["size"] = ALONE_STEP_SIZE
    result["ratio"] = result["chunked"]["tokens_per_s"] / result["unchunked"]["tokens_per_s"]
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--compare", choices=[*COMPARISONS, "alone_chunks", "all"], default="all",
                        help="all: every model pair (alone_chunks runs only when named)")
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--ffn", type=int, default=1024)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--vocab-size", type=int, default=8000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--length", type=int, default=32, help="source and target tokens per sentence")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--steps", type=int, default=5, help="timed updates per model per round")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    device = torch.device(args.device)
    names = list(COMPARISONS) if args.compare == "all" else [args.compare]
    report = {"device": str(device)}
    if any(name in COMPARISONS for name in names):
        report["size"] = (f"{args.layers}+{args.layers} layers, d={args.dim}, ffn={args.ffn}, {args.heads} heads, "
                          f"V={args.vocab_size}, batch {args.batch_size}x{args.length}")
    memory = peak_memory_of_building_alone() if "alone" in names else None
    for name in names:
        report[name] = compare_alone_chunks(args, device) if name == "alone_chunks" else compare(*COMPARISONS[name], args, device)
    if memory:
        report["alone"]["memory"] = memory
    if args.json:
        print(json.dumps(report))
        return
    print(f"device {report['device']}; {report.get('size', 'ALONE embeddings only')}; "
          f"{args.rounds} alternating rounds of {args.steps} updates")
    if "alone_chunks" in names:
        chunks, size = report["alone_chunks"], ALONE_STEP_SIZE
        print(f"alone_chunks: one update of ALONE embeddings + tied projection, V={size['vocab']}, d={size['dim']}, "
              f"D_inter={size['inter_dim']}, "
              f"{args.batch_size * args.length} tokens: chunks of {CHUNK_SIZE} words {chunks['chunked']['tokens_per_s']:.0f} / "
              f"one piece {chunks['unchunked']['tokens_per_s']:.0f} tokens/s = ratio {chunks['ratio']:.3f}; peak memory "
              f"{chunks['chunked']['peak_memory_mib']:.0f} / {chunks['unchunked']['peak_memory_mib']:.0f} MiB")
    for name in (name for name in names if name in COMPARISONS):
        result = report[name]
        baseline, candidate = (" ".join(flags[1:]) for flags in COMPARISONS[name])
        print(f"{name}: {candidate} {result['candidate']:.0f} / {baseline} {result['baseline']:.0f} "
              f"target tokens/s = ratio {result['ratio']:.3f}; parameters "
              f"{result['parameters']['candidate']:,} / {result['parameters']['baseline']:,} = "
              f"{result['parameters']['candidate'] / result['parameters']['baseline']:.3f}")
    if memory:
        print(f"alone: building V=32000, d=512 embeddings raised peak RSS by {memory['build_peak_mib']:.1f} MiB; "
              f"one V x d float32 table, measured the same way: {memory['vocab_by_dim_table_peak_mib']:.1f} MiB")


if __name__ == "__main__":
    main()
