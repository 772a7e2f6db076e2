"""export_native(): the package it writes (sources, golden vectors, harness, Makefile,
summary), deterministic output, and clear errors for what the engine cannot compile."""
import tfuav  # noqa: F401  (first: selects Keras 2)

import json
import subprocess

import numpy as np
import pytest
from helpers import small_cnn_tflite
from test_native_support import VWW, ModelBuilder, reference_outputs

from tfuav.errors import TfuavError
from tfuav.export.fit import FitError
from tfuav.export.native import NativeExportError, export_native
from tfuav.export.native.build import run_host


@pytest.fixture(scope="module")
def cnn():
    return small_cnn_tflite(size=24)


def test_package_contents_and_make_host(cnn, tmp_path):
    summary = export_native(cnn, "cortex-m7", tmp_path, "small cnn", golden_count=2,
                            echo=lambda *_: None)
    folder = tmp_path / "native"
    assert summary["folder"] == str(folder)
    for f in ("small_cnn.c", "small_cnn.h", "tfuav_nn.h", "tfuav_nn_conv.c", "main.c",
              "host_main.c", "golden.c", "golden.h", "Makefile", "native.json",
              "startup_cortex_m.c", "mps2_an500.ld", "stm32h743.ld"):
        assert (folder / f).is_file(), f
    written = json.loads((folder / "native.json").read_text())
    assert written["scratch_bytes"] == summary["scratch_bytes"] > 0
    assert written["golden"]["host_check"]["bit_exact"] is True
    assert written["memory_plan"]["scratch_bytes"] == summary["scratch_bytes"]
    header = (folder / "small_cnn.h").read_text()
    assert "void small_cnn_invoke(const int8_t *in, int8_t *out, uint8_t *scratch);" in header
    assert f"#define SMALL_CNN_SCRATCH_BYTES {summary['scratch_bytes']}" in header
    source = (folder / "small_cnn.c").read_text()
    assert "malloc" not in source and "flatbuffer" not in source.lower()
    # the user-facing Makefile builds the host program, which reproduces the reference
    proc = subprocess.run(["make", "-s", "host"], cwd=folder, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    rng = np.random.default_rng(3)
    x = rng.integers(-128, 128, (1, 24, 24, 3)).astype(np.int8)
    got = run_host(folder / "model_host", [x.tobytes()])[0]
    assert got == reference_outputs(cnn, [x])[0].astype(np.int8).tobytes()


def test_export_is_deterministic(cnn, tmp_path):
    for d in ("a", "b"):
        export_native(cnn, "cortex-m4", tmp_path / d, "cnn", echo=lambda *_: None)
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
    assert files_a == files_b
    for rel in files_a:
        if rel.name == "native.json":  # holds the folder path
            continue
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel


def _model_with(op_name, opts=None, out_type="int8"):
    b = ModelBuilder()
    x = b.tensor((1, 4, 4, 3), scale=0.05, zero_point=0)
    y = b.tensor((1, 4, 4, 3), scale=0.05, zero_point=0)
    b.op("RELU", [x], [y])
    z = b.tensor((1, 4, 4, 3), out_type, scale=0.05, zero_point=0)
    b.op(op_name, [y], [z], opts)
    return b.build([x], [z])


def test_unsupported_op_stops_the_export_and_names_it(tmp_path):
    model = _model_with("SIN")
    with pytest.raises(NativeExportError, match=r"op 1 \(SIN\)"):
        export_native(model, "cortex-m7", tmp_path, "m", echo=lambda *_: None)
    assert not (tmp_path / "native").exists()


def test_unsupported_variant_names_the_op(tmp_path):
    b = ModelBuilder()
    x = b.tensor((1, 3, 4, 5), scale=0.05, zero_point=0)
    y = b.tensor((1, 3, 4, 5), "int16", scale=0.05, zero_point=0)
    b.op("QUANTIZE", [x], [y])
    z = b.tensor((1, 3, 4, 5), scale=0.05, zero_point=0)
    b.op("QUANTIZE", [y], [z])
    with pytest.raises(NativeExportError, match=r"op 0 \(QUANTIZE\).*int16"):
        export_native(b.build([x], [z]), "cortex-m7", tmp_path, "m", echo=lambda *_: None)
    with pytest.raises(NativeExportError, match=r"model output .* is float32"):
        export_native(_model_with("RELU", out_type="float32"), "cortex-m7", tmp_path, "m",
                      echo=lambda *_: None)


def test_non_cortex_m_target_is_refused(tmp_path):
    with pytest.raises(TfuavError, match="Cortex-M"):
        export_native(VWW.read_bytes(), "rpi", tmp_path, "vww", echo=lambda *_: None)


def test_fit_against_the_board_budget(cnn, tmp_path):
    """A board whose RAM cannot hold the planned scratch: FitError before anything is written,
    unless forced; the summary's fit says why."""
    board = tmp_path / "tiny.yaml"
    board.write_text("name: tiny\ndescription: a board with 2 KB of RAM\nfamily: cortex-m\n"
                     "runtime: tflm\nchip: STM32H743\nclock_mhz: 100\nflash_bytes: 2097152\n"
                     "ram_bytes: 2048\nreserved_fraction: 0.0\n"
                     "cpu_flags: [-mcpu=cortex-m7, -mthumb]\nlinker_script: stm32h743\n"
                     "qemu_machine: mps2-an500\nqemu_linker_script: mps2_an500\n")
    with pytest.raises(FitError, match=r"RAM .* exceeds the budget of 2,048"):
        export_native(cnn, str(board), tmp_path / "a", "cnn", echo=lambda *_: None)
    assert not (tmp_path / "a").exists()
    warnings = []
    summary = export_native(cnn, str(board), tmp_path / "b", "cnn", force=True,
                            echo=warnings.append)
    assert summary["fit"]["fits"] is False
    assert summary["fit"]["arena_bytes"] == summary["scratch_bytes"]
    assert any("--force" in w for w in warnings)
