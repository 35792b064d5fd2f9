"""Time and peak memory of one recipes/nerf grid read (forward and backward) by how its points are
split into grid_sample batch items, and whether passive OpenMP waits pay in training.

CPU grid_sample runs one thread per batch item. ``VoxelGrid`` reads all points in one call; the
alternative measured here reads them as one batch item per thread over an expanded view of the
grid, whose backward allocates one grid-sized gradient per part and sums them (the recipe did so
until this measurement). Compared, at 1 and 2 torch threads:

- ``parts=1``: one grid_sample over all points (one thread, one gradient), as ``VoxelGrid`` reads;
- ``parts=2``: one part per thread on this 2-core machine;
- ``parts=8``: what an 8-core machine (the recipe's thread cap) would read with;

each as a training read (forward and backward) and as a rendering read (forward, no gradient).

The grids and point counts are those of a default training on the bunny of bench/nerf_quality.py
(97 voxels along the box; ~60k radiance points and ~16k feature points per read after the
occupancy grid skips empty space). Each round runs every case once in a fresh worker process, in
an order that alternates between rounds; ratios are per round (same worker), then the median.
Peak memory: the rise of the worker's resident set above the resident set before the read (peak
reset through /proc/self/clear_refs; glibc told to hand large blocks straight back).

``--train-iterations N`` also times N iterations of ``fairseq-plugins-nerf train`` on the
procedural scene at 2 threads, ``--train-rounds`` times, alternating: as the command runs (the
package makes OpenMP's idle threads sleep, OMP_WAIT_POLICY=PASSIVE, in its own process) and with
OpenMP's default policy (torch imported before the package), a fresh process each::

    python bench/nerf_grid_read.py --rounds 5 --train-iterations 40 --train-rounds 2

On a machine that other jobs share, read the load averages written beside the ratios.
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GRIDS = {  # name: (channels, voxels along each axis, points per read)
    "density": (1, 97, 60000),
    "colour": (3, 97, 60000),
    "feature": (16, 64, 16000),
}
PARTS = (1, 2, 8)
THREADS = (1, 2)
MODES = ("forward+backward", "forward")  # training reads; rendering and query reads (no gradient)
READS_PER_CASE = 3


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--train-iterations", type=int, default=0, help="also time this many training iterations per wait policy (0: skip)")
    parser.add_argument("--train-rounds", type=int, default=2, help="training runs per wait policy")
    parser.add_argument("--json", default=os.path.join(ROOT, "bench", "results", "nerf_grid_read.json"))
    parser.add_argument("--worker", type=int, default=-1, help=argparse.SUPPRESS)  # a round's number: measure and print JSON
    return parser.parse_args(argv)


def resident_kib(field):
    return int(re.search(rf"^{field}:\s+(\d+) kB", open("/proc/self/status").read(), re.M).group(1))


def worker(round_number):
    """One round: every (grid, threads, parts) case, in an order that depends on the round."""
    import torch
    import torch.nn.functional as F

    torch.manual_seed(0)
    cases = [(mode, name, threads, parts) for mode in MODES for name in GRIDS for threads in THREADS for parts in PARTS]
    if round_number % 2:
        cases.reverse()
    results = {}
    for mode, name, threads, parts in cases:
        channels, voxels, count = GRIDS[name]
        torch.set_num_threads(threads)
        grid = torch.nn.Parameter(torch.randn(1, channels, voxels, voxels, voxels))
        points, weights = torch.rand(count, 3) * 2 - 1, torch.randn(count, channels)  # already in [-1, 1]

        def sample():
            per_part = -(-count // parts)  # one batch item per part, all reading the same grid
            batched = F.pad(points, (0, 0, 0, per_part * parts - count)).view(parts, 1, 1, per_part, 3)
            values = F.grid_sample(grid.expand(parts, -1, -1, -1, -1), batched, mode="bilinear", align_corners=True)
            return values.permute(0, 2, 3, 4, 1).reshape(-1, channels)[:count]

        def read():
            grid.grad = None
            if mode == "forward":
                with torch.no_grad():
                    sample()
            else:
                (sample() * weights).sum().backward()

        read()  # warm-up
        grid.grad = None
        before = resident_kib("VmRSS")
        with open("/proc/self/clear_refs", "w") as reset:
            reset.write("5")  # VmHWM := VmRSS
        read()
        peak_mib = (resident_kib("VmHWM") - before) / 1024
        start = time.perf_counter()
        for _ in range(READS_PER_CASE):
            read()
        seconds = (time.perf_counter() - start) / READS_PER_CASE
        results[f"{mode} {name} threads={threads} parts={parts}"] = {"seconds": seconds, "peak_mib": peak_mib, "grid_mib": grid.numel() * 4 / 2**20}
    print(json.dumps(results))


def run_worker(round_number):
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072", OMP_WAIT_POLICY="PASSIVE")  # the recipe's policy
    out = subprocess.run([sys.executable, __file__, "--worker", str(round_number)], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def train_seconds(scene, out, iterations, policy):
    """Training seconds reported by ``train`` with no OMP_WAIT_POLICY in the environment: run as the
    command (``policy`` "PASSIVE", the package's), or with torch imported before the package, whose
    policy then comes too late (``policy`` "default", OpenMP's)."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    code = "import sys" + (", torch" if policy == "default" else "") + "; from recipes.nerf.cli import main; main(sys.argv[1:])"
    command = [sys.executable, "-c", code, "train", "--scene", scene, "--out", out, "--iterations", str(iterations),
               "--eval-every", str(10 * iterations), "--threads", "2"]
    stdout = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=True).stdout
    return float(re.search(r"after \d+ iterations, ([\d.]+) s of training", stdout).group(1))


def main():
    args = parse_args()
    if args.worker >= 0:
        return worker(args.worker)
    record = {"command": "python bench/nerf_grid_read.py " + " ".join(sys.argv[1:]), "cpus": os.cpu_count(),
              "grids": {name: {"channels": c, "voxels_per_side": v, "points": p} for name, (c, v, p) in GRIDS.items()},
              "load_average_before": os.getloadavg()}
    rounds = []
    for number in range(args.rounds):
        rounds.append(run_worker(number))
        print(f"round {number + 1}/{args.rounds} done, load {os.getloadavg()[0]:.2f}", flush=True)
    cases = {}
    for key in rounds[0]:
        mode, name, threads, parts = key.split()
        baseline = f"{mode} {name} {threads} parts=1"
        cases[key] = {
            "seconds": statistics.median(r[key]["seconds"] for r in rounds),
            "time_vs_one_call": statistics.median(r[key]["seconds"] / r[baseline]["seconds"] for r in rounds),
            "peak_mib": statistics.median(r[key]["peak_mib"] for r in rounds),
            "grid_mib": rounds[0][key]["grid_mib"],
        }
        print(f"{key:44s} {cases[key]['seconds'] * 1000:7.1f} ms  x{cases[key]['time_vs_one_call']:.2f} of parts=1  "
              f"peak +{cases[key]['peak_mib']:6.1f} MiB (grid {cases[key]['grid_mib']:.1f} MiB)")
    record["reads"] = cases
    if args.train_iterations:
        with tempfile.TemporaryDirectory() as work:
            scene = os.path.join(work, "scene")
            subprocess.run([sys.executable, "-m", "recipes.nerf", "make-scene", "--out", scene], cwd=ROOT, check=True, capture_output=True)
            times = {"default": [], "PASSIVE": []}
            for number in range(args.train_rounds):
                for policy in (("default", "PASSIVE") if number % 2 == 0 else ("PASSIVE", "default")):
                    times[policy].append(train_seconds(scene, os.path.join(work, "run"), args.train_iterations, policy))
                print(f"training round {number + 1}: default {times['default'][-1]:.1f} s, PASSIVE {times['PASSIVE'][-1]:.1f} s, "
                      f"load {os.getloadavg()[0]:.2f}", flush=True)
            record["training"] = {
                "iterations": args.train_iterations, "threads": 2, "seconds": times,
                "passive_vs_default": statistics.median(p / d for p, d in zip(times["PASSIVE"], times["default"])),
            }
            print(f"training: PASSIVE takes x{record['training']['passive_vs_default']:.2f} the time of OpenMP's default")
    record["load_average_after"] = os.getloadavg()
    os.makedirs(os.path.dirname(args.json), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(record, f, indent=1)
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
