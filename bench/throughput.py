"""Training throughput of ``b2t_transformer`` over fairseq's stock ``transformer``.

Both models are built by fairseq from the same flags (identical size), trained on
the same random batches with Adam, and timed alternately in one process: each
round times ``--steps`` updates of one model then of the other, the order flipping
every round, so drifts of the machine's speed hit both alike. Prints target
tokens per second of each (median over rounds) and their ratio::

    python bench/throughput.py                      # CPU-sized default
    python bench/throughput.py --layers 6 --dim 512 --ffn 2048 --heads 8 --batch-size 128 --device cuda
"""

import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F
from fairseq_plugins.cli.dataless import model_from_flags
from fairseq_plugins.cli.gradnorm import random_batch

ARCHS = ("transformer", "b2t_transformer")


def build(arch, args, device):
    flags = [
        "--arch", arch, "--share-all-embeddings",
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
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
    models = {arch: build(arch, args, device) for arch in ARCHS}
    dictionary = models[ARCHS[0]][0].decoder.dictionary
    batch = [t.to(device) for t in random_batch(dictionary, args.batch_size, args.length, args.length, seed=1)]
    for model, optimizer in models.values():  # warm-up: allocator, kernels, Adam state
        train_steps(model, optimizer, batch, 2, device)

    tokens_per_second = {arch: [] for arch in ARCHS}
    for round_index in range(args.rounds):
        order = ARCHS if round_index % 2 == 0 else ARCHS[::-1]
        for arch in order:
            tokens_per_second[arch].append(train_steps(*models[arch], batch, args.steps, device))

    medians = {arch: statistics.median(values) for arch, values in tokens_per_second.items()}
    ratio = medians["b2t_transformer"] / medians["transformer"]
    size = f"{args.layers}+{args.layers} layers, d={args.dim}, ffn={args.ffn}, {args.heads} heads"
    if args.json:
        print(json.dumps({"device": str(device), "size": size, "tokens_per_second": medians, "ratio": ratio}))
        return
    print(f"device {device}; {size}; batch {args.batch_size}x{args.length} tokens; "
          f"{args.rounds} alternating rounds of {args.steps} updates")
    for arch, value in medians.items():
        print(f"{arch:>16}: {value:10.0f} target tokens/s (median)")
    print(f"ratio b2t_transformer / transformer: {ratio:.3f}")


if __name__ == "__main__":
    main()
