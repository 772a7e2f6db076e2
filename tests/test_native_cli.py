"""`tfuav export --runtime native`: the generated C engine package from the command line."""
import json
import subprocess

from helpers import VWW_DIR, convert_zoo_model, error_line, run_cli
from tfuav.convert import tflite_info


def test_native_export_of_the_vww_fixture_is_checked_bit_exact(tmp_path):
    out = tmp_path / "vww"
    result = run_cli("export", VWW_DIR / "vww_96_int8.tflite", "--target", "cortex-m7",
                     "--runtime", "native", "--out", out, "--golden", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "native" / "native.json").read_text())
    assert summary["engine"] == "native" and summary["golden"]["count"] == 2
    assert summary["golden"]["host_check"]["bit_exact"] is True
    assert "scratch" in result.stdout


def test_native_detector_package_carries_the_decoder(tmp_path):
    tflite, _ = convert_zoo_model("uavlite", 64)
    model = tmp_path / "uavlite.tflite"
    model.write_bytes(tflite)
    out = tmp_path / "det"
    result = run_cli("export", model, "--target", "cortex-m7", "--runtime", "native",
                     "--detector", "--classes", "person,car,truck,bus", "--out", out)
    assert result.returncode == 0, result.stderr[-3000:]
    folder = out / "native"
    config = (folder / "detect_config.h").read_text()
    grid = tflite_info(tflite)["outputs"][0]["shape"]  # [1, 16, 16, 8] at 64x64
    assert list(grid) == [1, 16, 16, 8]
    assert f"MODEL_DETECT_GRID_HEIGHT {grid[1]}" in config
    assert "MODEL_DETECT_NUM_CLASSES 4" in config and "MODEL_DETECT_STRIDE 4" in config
    compiled = subprocess.run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-c",
                               "-include", "detect_config.h", "tfuav_detect.c", "-o",
                               str(tmp_path / "d.o")], cwd=folder, capture_output=True, text=True)
    assert compiled.returncode == 0, compiled.stderr


def test_native_runtime_is_for_cortex_m(tmp_path):
    line = error_line(run_cli("export", VWW_DIR / "vww_96_int8.tflite", "--target", "rpi",
                              "--runtime", "native", "--out", tmp_path / "x"))
    assert "native" in line and "Cortex-M" in line


def test_build_refuses_native_for_a_host_target_before_training(tmp_path):
    line = error_line(run_cli("build", "--target", "rpi", "--runtime", "native",
                              "--out", tmp_path / "x"))
    assert "native" in line and "rpi" in line
    assert not (tmp_path / "x" / "model.keras").exists()
