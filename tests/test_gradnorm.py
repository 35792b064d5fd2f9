"""``fairseq-plugins-gradnorm`` end to end: the B2T paper's gradient claim at init, and the CLI contract.

Each case runs the installed console script. Torch gets one thread: on a shared 2-core machine its
default two threads spin against other jobs and run ~10x slower.
"""

import json
import os
import subprocess
import sys

import pytest

from conftest import one_line_error

GRADNORM = os.path.join(os.path.dirname(sys.executable), "fairseq-plugins-gradnorm")
DEEP_SMALL = (
    "--encoder-layers 18 --decoder-layers 18 --encoder-embed-dim 128 --decoder-embed-dim 128 "
    "--encoder-ffn-embed-dim 512 --decoder-ffn-embed-dim 512 "
    "--encoder-attention-heads 4 --decoder-attention-heads 4 --dropout 0 --seed 1"
).split()
SHALLOW_SMALL = (
    "--encoder-layers 2 --decoder-layers 2 --encoder-embed-dim 64 --decoder-embed-dim 64 "
    "--encoder-ffn-embed-dim 128 --decoder-ffn-embed-dim 128 --dropout 0"
).split()
SCHEMES = {
    "post_ln": ["--arch", "composable_transformer"],
    "pre_ln": ["--arch", "composable_transformer", "--encoder-residual", "pre_ln", "--decoder-residual", "pre_ln"],
    "b2t": ["--arch", "b2t_transformer"],
}


def gradnorm(*args, check=True):
    result = subprocess.run(
        [GRADNORM, *map(str, args)], capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def deep_norms():
    """``--json`` output of the 18-layer d=128 probe for each residual scheme."""
    return {scheme: json.loads(gradnorm(*flags, *DEEP_SMALL, "--json").stdout) for scheme, flags in SCHEMES.items()}


def decoder_ratio(norms):
    return norms["decoder"][0] / norms["decoder"][-1]


def test_json_has_one_norm_per_layer(deep_norms):
    for norms in deep_norms.values():
        assert set(norms) == {"encoder", "decoder"}
        assert len(norms["encoder"]) == len(norms["decoder"]) == 18
        assert all(value > 0 for stack in norms.values() for value in stack)


def test_deep_post_ln_decoder_gradients_vanish_toward_the_bottom(deep_norms):
    ratios = {scheme: decoder_ratio(norms) for scheme, norms in deep_norms.items()}
    print("decoder bottom/top gradient-norm ratios at init (18L, d=128):", ratios)
    assert ratios["post_ln"] < 0.1, ratios
    assert ratios["b2t"] >= 5 * ratios["post_ln"], ratios
    assert ratios["pre_ln"] > 0.5, ratios


def test_stock_fairseq_transformer_table_and_plot(tmp_path):
    plot = tmp_path / "norms.png"
    result = gradnorm("--arch", "transformer", *SHALLOW_SMALL, "--plot", plot)
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines[2:]] == ["1", "2", "bottom/top"], result.stdout
    assert plot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


BAD_INPUTS = {
    "--vocab-size": ["--arch", "b2t_transformer", "--vocab-size", "3", "--plot", "{existing}"],
    "--arch": ["--arch", "no_such_arch", "--plot", "{existing}"],
    "--plot": ["--arch", "b2t_transformer", "--plot", "{missing_dir}/norms.png"],
}


@pytest.mark.parametrize("flag", BAD_INPUTS)
def test_bad_input_is_one_line_naming_the_flag_and_writes_nothing(tmp_path, flag):
    existing, missing_dir = tmp_path / "norms.png", tmp_path / "missing"
    existing.write_bytes(b"old")
    args = [arg.format(existing=existing, missing_dir=missing_dir) for arg in BAD_INPUTS[flag]]
    result = gradnorm(*args, check=False)
    one_line_error(result, flag)
    assert result.stdout == ""
    assert existing.read_bytes() == b"old" and not missing_dir.exists()


def test_plot_without_matplotlib_says_so_in_one_line(tmp_path):
    code = (
        "import sys; sys.modules['matplotlib'] = None; "
        "from fairseq_plugins.cli.gradnorm import main; main()"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, "--arch", "transformer", "--plot", str(tmp_path / "norms.png")],
        capture_output=True,
        text=True,
    )
    one_line_error(result, "--plot", "matplotlib")
    assert not (tmp_path / "norms.png").exists()
