"""`tfuav compress`: channel pruning of a finished build, converted, validated and exported again."""
import json

import pytest

from helpers import cli_build, error_line, run_cli
from tfuav.convert import tflite_info

SMALL_BUILD = """\
data:
  image_size: 64
  synthetic_per_class: 24
model:
  name: takunet
train:
  epochs: 1
  batch_size: 16
convert:
  representative_samples: 16
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return cli_build(tmp_path_factory.mktemp("compress"), SMALL_BUILD)


@pytest.mark.slow
def test_compress_halves_the_macs_and_rebuilds_the_firmware(built):
    result = run_cli("compress", built, "--prune-channels", "--budget-macs", "0.5",
                     "--slimming-epochs", "1", "--finetune-epochs", "1", "--runtime", "native")
    assert result.returncode == 0, result.stderr[-3000:]
    before = json.loads((built / "report.json").read_text())
    out = built / "compressed"
    after = json.loads((out / "report.json").read_text())
    # the int8 graph on disk, counted by TFLite's own op list, really has about half the MACs
    macs_after = tflite_info((out / "model_int8.tflite").read_bytes())["macs"]
    assert 0.45 * before["macs"] <= macs_after <= 0.5 * before["macs"], (before["macs"], macs_after)
    assert after["channel_pruning"]["macs_after"] == macs_after
    assert after["validation"]["passed"] is True
    # the pruned model compiled to C by the native engine, checked bit-exact on the host
    native = json.loads((out / "native" / "native.json").read_text())
    assert native["golden"]["host_check"]["bit_exact"] is True
    assert after["native"]["scratch_bytes"] < before["firmware"]["arena"]["arena_bytes"]
    narrowed = [r for r in after["channel_pruning"]["table"]
                if r["channels_out_after"] < r["channels_out_before"]]
    assert narrowed
    md = (out / "report.md").read_text()
    assert "## Channel pruning" in md and f"| {narrowed[0]['layer']} |" in md
    assert (out / "model.keras").is_file()


def test_compress_needs_a_build_directory(tmp_path):
    line = error_line(run_cli("compress", tmp_path, "--prune-channels"))
    assert "report.json" in line and "tfuav build" in line


def test_compress_needs_something_to_do(tmp_path):
    (tmp_path / "report.json").write_text("{}")
    (tmp_path / "model.keras").write_text("")
    line = error_line(run_cli("compress", tmp_path))
    assert "--prune-channels" in line
