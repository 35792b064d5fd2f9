"""bench/gpu.sh in its tiny CPU mode: every architecture trains and decodes, and the JSON is complete."""

import json
import os
import subprocess

import pytest

from conftest import BIN_DIR

SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench", "gpu.sh")
ARCHITECTURES = ["transformer", "b2t_transformer_6l", "b2t_transformer_18l", "shape_transformer",
                 "alone_transformer_wmt_en_de"]
MEASURES = {"train_tokens_per_s", "peak_gpu_memory_gib", "generate_sentences_per_s"}


@pytest.mark.slow
def test_tiny_cpu_run_writes_one_complete_json(tmp_path):
    out = tmp_path / "gpu.json"
    env = {**os.environ, "TINY": "1", "PATH": BIN_DIR + os.pathsep + os.environ["PATH"]}
    result = subprocess.run(["bash", SCRIPT, str(out)], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    report = json.loads(out.read_text())
    assert json.loads(result.stdout) == report  # printed as written
    assert (report["device"], report["gpu"]) == ("cpu", None)
    assert report["setup"]["tiny"] and not report["setup"]["fp16"] and report["setup"]["beam"] == 4
    assert list(report["architectures"]) == ARCHITECTURES == list(report["over_transformer"])
    for name, measures in report["architectures"].items():
        assert set(measures) == MEASURES, name
        assert measures["train_tokens_per_s"] > 0 and measures["generate_sentences_per_s"] > 0, name
        assert measures["peak_gpu_memory_gib"] is None, name  # no GPU: no GPU memory
        ratios = report["over_transformer"][name]
        assert ratios["train_tokens_per_s"] == pytest.approx(measures["train_tokens_per_s"]
                                                            / report["architectures"]["transformer"]["train_tokens_per_s"])
    assert report["over_transformer"]["transformer"] == {"train_tokens_per_s": 1.0, "generate_sentences_per_s": 1.0}
    print("over transformer:", json.dumps(report["over_transformer"]))
