"""Updates per second of two data-parallel CPU workers versus the best single process with ``--update-freq 2``.

Both train the same model on the same toy corpus with the same effective batch (two batches per
update), alternately for ``--rounds`` rounds, through the real ``fairseq-train``: the two-worker
run with fairseq's own spawning (``--distributed-world-size 2``, gloo). Each run's rate is the
median ``ups`` of its ``train_inner`` lines after the first (start-up excluded); prints the medians
and their ratio, and writes them with ``--json``::

    python bench/data_parallel.py
    python bench/data_parallel.py --arch alone_transformer --updates 200 --json bench/results/data_parallel.json

The two workers split the cores (cores / 2 torch threads each: fairseq-train's spawning sets it when
``OMP_NUM_THREADS`` is unset, and the bench unsets it). They are compared with the faster of two
single-process configurations, every core (torch's default threads) or one thread: which one is
faster depends on the other jobs on the machine (OpenMP threads wait for busy cores), so the load
average is recorded with the rates.
"""

import argparse
import json
import os
import re
import statistics
import tempfile

from fairseq_plugins.cli.fairseq_runs import fairseq_command, run_fairseq
from fairseq_plugins.cli.user_dir import user_dir
from fairseq_plugins.synthetic_translation import write_corpus

MODEL = (
    "--encoder-layers 2 --decoder-layers 2 --encoder-embed-dim 128 --decoder-embed-dim 128 "
    "--encoder-ffn-embed-dim 256 --decoder-ffn-embed-dim 256 --encoder-attention-heads 4 "
    "--decoder-attention-heads 4 --share-all-embeddings"
).split()


def fairseq(name, *args, work, env=None):
    """The output of ``fairseq-<name> args`` (run by the package's one runner, its log in ``work``)."""
    log = os.path.join(work, f"{name}.log")
    run_fairseq(fairseq_command(name) + list(args), log, env=env)
    with open(log) as f:
        return f.read()


def updates_per_second(log):
    rates = [float(rate) for rate in re.findall(r"train_inner \|.* ups=([\d.]+),", log)]
    return statistics.median(rates[1:])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="b2t_transformer")
    parser.add_argument("--updates", type=int, default=120)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", metavar="FILE", help="write the measurements here")
    args = parser.parse_args()

    load_before = os.getloadavg()  # other jobs on the machine slow both sides
    env = {name: value for name, value in os.environ.items() if name != "OMP_NUM_THREADS"}
    with tempfile.TemporaryDirectory() as work:
        raw = write_corpus(os.path.join(work, "raw"), (("train", 6000), ("valid", 64)))
        data = os.path.join(work, "bin")
        fairseq("preprocess", "--source-lang", "en", "--target-lang", "xx", "--joined-dictionary",
                "--trainpref", f"{raw}/train", "--validpref", f"{raw}/valid", "--destdir", data, "--workers", 1, work=work)
        train = [data, "--user-dir", user_dir(), "--arch", args.arch, *MODEL, "--optimizer", "adam", "--lr", "1e-3",
                 "--criterion", "label_smoothed_cross_entropy", "--max-tokens", 1024, "--max-update", args.updates,
                 "--cpu", "--num-workers", 0, "--no-save", "--disable-validation", "--log-format", "simple",
                 "--log-interval", 10, "--no-progress-bar", "--seed", 1]
        runs = {"one process, --update-freq 2, all cores": (["--update-freq", 2], env),
                "one process, --update-freq 2, one thread": (["--update-freq", 2], dict(env, OMP_NUM_THREADS="1")),
                "two workers (gloo)": (["--distributed-world-size", 2], env)}
        rates = {name: [] for name in runs}
        for _ in range(args.rounds):
            for name, (flags, run_env) in runs.items():
                rates[name].append(updates_per_second(fairseq("train", *train, *flags, work=work, env=run_env)))
    medians = {name: statistics.median(values) for name, values in rates.items()}
    *singles, two = medians.values()
    one = max(singles)
    for name, value in medians.items():
        print(f"{name:42s} {value:7.2f} updates/s  (rounds: {', '.join(f'{v:.2f}' for v in rates[name])})")
    print(f"two workers / best single process: {two / one:.2f}  ({os.cpu_count()} CPU cores, {args.arch}, {args.updates} "
          f"updates; load average {load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after)")
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump({"arch": args.arch, "updates": args.updates, "cpu_cores": os.cpu_count(),
                       "load_average_before": load_before, "load_average_after": os.getloadavg(), "updates_per_second": rates,
                       "median": medians, "ratio_two_workers_over_best_single_process": two / one}, f, indent=2)


if __name__ == "__main__":
    main()
