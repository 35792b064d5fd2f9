"""Test PSNR against training time of ``fairseq-plugins-nerf train`` with its defaults, on two scenes:

- ``bunny``: the Stanford bunny of glmark2-data (``apt-get install glmark2-data``) wrapped in one of
  its photographs (``nasa1.png``), rendered by ``make-mesh-scene`` (100x100, 100/4/16 views, no labels;
  the teacher is then EfficientNet-Lite0);
- ``procedural``: the labelled scene of ``make-scene`` (64x64; the oracle teacher).

Each is trained for ``--minutes`` of training time (the validation renders are not counted) with
``--eval-every`` validation points (4 views), then ``evaluate`` gives the test PSNR (16 views).
Writes the curves, test PSNRs, iteration counts and the machine's load averages to ``--json`` and
a plot to ``--plot``::

    python bench/nerf_quality.py                     # about 12 minutes: two 5-minute trainings
    python bench/nerf_quality.py --minutes 1 --work-dir /tmp/nq   # a quick look

Training time is wall-clock time: on a machine that other jobs share, read the load averages and
the iteration counts beside it.
"""

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUNNY = "/usr/share/glmark2/models/bunny.obj"
TEXTURE = "/usr/share/glmark2/textures/nasa1.png"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=5.0, help="training time per scene")
    parser.add_argument("--eval-every", type=int, default=100, help="iterations between validation points of the curve")
    parser.add_argument("--work-dir", default="/tmp/nerf-quality", help="scenes and runs (reused scenes are not regenerated)")
    parser.add_argument("--json", default=os.path.join(ROOT, "bench", "results", "nerf_quality.json"))
    parser.add_argument("--plot", default=os.path.join(ROOT, "bench", "results", "nerf_quality.png"))
    parser.add_argument("--mesh", default=BUNNY)
    parser.add_argument("--texture", default=TEXTURE)
    parser.add_argument("--scenes", nargs="+", default=["bunny", "procedural"], choices=["bunny", "procedural"])
    args = parser.parse_args(argv)
    if "bunny" in args.scenes and not os.path.isfile(args.mesh):
        parser.error(f"--mesh {args.mesh} is absent (apt-get install glmark2-data, or --scenes procedural)")
    return args


def nerf(*arguments):
    """Run ``fairseq-plugins-nerf`` (from this checkout) and return its stdout; print the command."""
    command = [sys.executable, "-m", "recipes.nerf", *map(str, arguments)]
    print("$ fairseq-plugins-nerf " + " ".join(map(str, arguments)), flush=True)
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} exited {result.returncode}:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    return result.stdout


def scene_commands(args, name, scene):
    if name == "bunny":
        return ["make-mesh-scene", "--mesh", args.mesh, "--texture", args.texture, "--out", scene]
    return ["make-scene", "--out", scene]


def measure(args, name):
    scene, run = os.path.join(args.work_dir, name), os.path.join(args.work_dir, f"run-{name}")
    make = scene_commands(args, name, scene)
    if not os.path.isfile(os.path.join(scene, "transforms_train.json")):
        nerf(*make)
    train = ["train", "--scene", scene, "--out", run, "--minutes", args.minutes, "--eval-every", args.eval_every]
    load_before, started = os.getloadavg(), time.time()
    nerf(*train)
    load_after, wall = os.getloadavg(), time.time() - started
    with open(os.path.join(run, "curve.json")) as f:
        summary = json.load(f)
    with open(os.path.join(run, "config.json")) as f:
        config = json.load(f)
    scores = json.loads(nerf("evaluate", "--run", run, "--json"))
    result = {
        "scene_command": "fairseq-plugins-nerf " + " ".join(map(str, make)),
        "train_command": "fairseq-plugins-nerf " + " ".join(map(str, train)),
        "teacher": config["teacher"], "threads": summary["threads"], "resolution": config["resolution"],
        "iterations": summary["iterations"], "train_seconds": summary["train_seconds"], "train_command_wall_seconds": round(wall, 1),
        "test_psnr": scores["test_psnr"], "test_views": scores["test_views"],
        "load_average_before": [round(x, 2) for x in load_before], "load_average_after": [round(x, 2) for x in load_after],
        "curve": summary["curve"],
    }
    print(f"{name}: test PSNR {result['test_psnr']:.2f} dB after {result['iterations']} iterations, "
          f"{result['train_seconds']} s of training; load average {load_before[0]:.2f} -> {load_after[0]:.2f}", flush=True)
    return result


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 4))
    for name, result in results.items():
        points = result["curve"]
        axes.plot([p["train_seconds"] for p in points], [p["val_psnr"] for p in points], marker=".",
                  label=f"{name} (test {result['test_psnr']:.2f} dB, {result['iterations']} it)")
    axes.axhline(28, color="grey", linestyle=":", linewidth=1)
    axes.set_xlabel("training seconds")
    axes.set_ylabel("validation PSNR (dB, 4 views)")
    axes.set_title("fairseq-plugins-nerf train, defaults")
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main(argv=None):
    args = parse_args(argv)
    os.makedirs(args.work_dir, exist_ok=True)
    results = {name: measure(args, name) for name in args.scenes}
    report = {"command": "python bench/nerf_quality.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "cpus": os.cpu_count(), "minutes": args.minutes, "scenes": results}
    for path in (args.json, args.plot):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(report, f, indent=1)
    plot(results, args.plot)
    print(f"wrote {args.json} and {args.plot}")


if __name__ == "__main__":
    main()
