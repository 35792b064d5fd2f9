"""The GPU acceptance run: which device it uses and the one JSON it writes.

    GPU_ACCEPTANCE_JSON=out.json pytest -m gpu tests/gpu          # CUDA, --fp16; skips without CUDA
    GPU_ACCEPTANCE_DEVICE=cpu GPU_ACCEPTANCE_JSON=out.json pytest -m gpu tests/gpu   # --cpu, fp32

The CPU mode only checks that every command of the run is valid; it is not part of CI.
"""

import json
import os
import platform
import time

import pytest
import torch

DEVICE = os.environ.get("GPU_ACCEPTANCE_DEVICE", "cuda")
if DEVICE not in ("cuda", "cpu"):
    raise pytest.UsageError(f"GPU_ACCEPTANCE_DEVICE must be cuda or cpu (got {DEVICE!r})")
ON_GPU = DEVICE == "cuda"
# fairseq-train/-validate/-generate flags for the device: half precision on the GPU, as papers train.
DEVICE_FLAGS = ["--fp16"] if ON_GPU else ["--cpu"]

RESULTS = {}  # test id -> {"outcome", "seconds", "numbers", "error"}
STARTED = time.time()


def pytest_collection_modifyitems(config, items):
    if ON_GPU and not torch.cuda.is_available():
        skip = pytest.mark.skip(reason="no CUDA device (GPU_ACCEPTANCE_DEVICE=cpu checks the commands on the CPU)")
        for item in items:
            if item.get_closest_marker("gpu"):
                item.add_marker(skip)


@pytest.fixture
def numbers(request):
    """A dict the test fills with the numbers it measured; they go into the JSON beside its outcome."""
    measured = {}
    RESULTS.setdefault(request.node.nodeid, {})["numbers"] = measured
    return measured


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    report = (yield).get_result()
    if not item.get_closest_marker("gpu"):
        return
    entry = RESULTS.setdefault(item.nodeid, {"numbers": {}})
    if report.when == "call" or report.outcome != "passed":  # a failing setup counts as the item's failure
        entry["outcome"] = report.outcome
        entry["seconds"] = round(entry.get("seconds", 0) + report.duration, 2)
        if report.failed:
            entry["error"] = str(report.longrepr.reprcrash.message if hasattr(report.longrepr, "reprcrash")
                                 else report.longrepr).splitlines()[0][:500]
    elif report.when == "setup":  # shared fixtures (data, checkpoints) are timed with the first item using them
        entry["seconds"] = round(report.duration, 2)


def pytest_sessionfinish(session, exitstatus):
    path = os.environ.get("GPU_ACCEPTANCE_JSON")
    items = {nodeid: entry for nodeid, entry in RESULTS.items() if "outcome" in entry}
    if not path or not items:
        return
    outcomes = [entry["outcome"] for entry in items.values()]
    summary = {
        "device": torch.cuda.get_device_name(0) if ON_GPU and torch.cuda.is_available() else platform.processor() or "cpu",
        "mode": "cuda --fp16" if ON_GPU else "cpu fp32 (--cpu)",
        "torch": torch.__version__,
        "wall_seconds": round(time.time() - STARTED, 1),
        "passed": outcomes.count("passed"),
        "failed": outcomes.count("failed"),
        "skipped": outcomes.count("skipped"),
        "items": items,
    }
    with open(path, "w") as file:
        json.dump(summary, file, indent=1)
