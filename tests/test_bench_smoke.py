"""Smoke test of ``python -m benchmarks``: a tiny subset runs and produces a well-formed result. Nothing about time is
asserted (timings belong to the benchmark suite itself, never to ``make test``)."""

from __future__ import annotations

import json
import math
import re

import pytest

from benchmarks import run as bench

STATUSES = {"met", "within noise", "not met", "reported", "skipped", "error"}
ROW_KEYS = {"group", "name", "kind", "value", "goal", "status", "notes"}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    json_path, md_path = out / "bench.json", out / "bench.md"
    result = bench.run_benchmarks(True, str(json_path), str(md_path), tiny=True,
                                  only=["builders", "metrics", "colorize", "voc"])
    return result, json_path, md_path


def test_result_structure(tiny_run):
    result, _, _ = tiny_run
    assert result["mode"] == "tiny"
    assert result["groups"] == ["builders", "metrics", "colorize", "voc"]
    assert {"cpu", "logical_cpus", "torch", "torch_threads"} <= set(result["machine"])
    assert result["rows"], "no rows"
    for row in result["rows"]:
        assert ROW_KEYS <= set(row), row
        assert row["status"] in STATUSES, row
        assert row["status"] != "error", row["notes"]
        if row["status"] not in ("skipped", "error"):
            assert isinstance(row["value"], (int, float)) and math.isfinite(row["value"]), row
    groups = {row["group"] for row in result["rows"]}
    assert {"builders", "flops", "metrics", "colorize", "voc"} <= groups
    counted = sum(result["summary"].values())
    assert counted == len(result["rows"])


def test_speedup_rows_carry_their_spread(tiny_run):
    result, _, _ = tiny_run
    speedups = [r for r in result["rows"] if r["kind"] == "speedup"]
    assert speedups
    for row in speedups:
        assert row["q25"] <= row["value"] <= row["q75"]
        assert row["reps"] >= 1
        assert row["baseline"] != row["candidate"]


def test_written_files(tiny_run):
    result, json_path, md_path = tiny_run
    on_disk = json.loads(json_path.read_text())
    assert on_disk["rows"] == json.loads(json.dumps(result["rows"]))
    markdown = md_path.read_text()
    assert markdown.startswith("# encdec benchmarks (tiny run)")
    assert "| Benchmark | Result | Range | Goal | Status |" in markdown
    assert "Status counts:" in markdown


def test_unknown_group_is_a_usage_error(capsys):
    assert bench.main(["--tiny", "--only", "nonsense"]) == 2
    assert "unknown benchmark group" in capsys.readouterr().err


def test_goal_status_rules():
    from benchmarks._timing import goal_status, ratio_row

    assert goal_status(1.0, 1.0) == "met"
    assert goal_status(0.98, 1.0, high=1.02) == "within noise"
    assert goal_status(0.98, 1.0, high=0.99) == "not met"
    assert goal_status(5.0, None) == "reported"
    assert goal_status(1e-7, 1e-6, higher_is_better=False) == "met"
    row = ratio_row("g", "n", {"a": [4.0, 2.0, 3.0], "b": [2.0, 2.0, 1.0]}, "a", "b", goal=2.0)
    assert row["value"] == 2.0 and row["status"] == "met"


def test_runs_as_python_dash_m_benchmarks_from_the_checkout():
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-m", "benchmarks", "--help"], cwd=root, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert "python -m benchmarks" in done.stdout and "--quick" in done.stdout


def test_inference_paths_and_layout_rows_run():
    result = bench.run_benchmarks(True, None, None, tiny=True, only=["paths"])
    rows = {row["name"]: row for row in result["rows"]}
    assert all(row["status"] != "error" for row in rows.values()), [r["notes"] for r in rows.values()]
    assert any(name.startswith("resnet34_unet predict vs fp32 eager") for name in rows)
    assert any(name.startswith("fit channels_last='auto' time / faster fixed layout") for name in rows)
    agreement = rows["resnet34_unet predict: pixels equal to fp32 eager"]
    assert 0.99 <= agreement["value"] <= 1.0
    assert re.match(r"CPU with(out)? native bf16 \(", result["machine"]["cpu_class"])


def test_tiling_rows_run():
    result = bench.run_benchmarks(True, None, None, tiny=True, only=["tiling"])
    rows = {row["name"]: row for row in result["rows"]}
    assert all(row["status"] != "error" for row in rows.values()), [r["notes"] for r in rows.values()]
    memory = rows["peak extra memory, 512x512 image, tile 128"]
    assert memory["kind"] == "MB" and memory["value"] > 0
    assert rows["tiled labels equal to untiled, 256x256, tile 128, unet(encoder='resnet18')"]["value"] >= 0.9


def test_timm_sweep_records_resumes_and_merges(tmp_path, capsys):
    pytest.importorskip("timm")
    from benchmarks import timm_sweep

    first, second, merged = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "all.json"
    assert timm_sweep.main(["--names", "resnet18", "mobilevitv2_050", "--json", str(first)]) == 0
    record = json.loads(first.read_text())
    assert {"timm", "torch", "cpu_class"} <= set(record)
    assert record["results"]["resnet18"]["sides"] == [64, 96]
    # MobileViT-v2 pads a 3x3 patch grid to 4x4 at 96: the sweep notes it and checks sizes its grid divides
    assert record["results"]["mobilevitv2_050"]["status"] == "equal"
    assert record["results"]["mobilevitv2_050"]["sides"] == [64, 128]
    assert "declared stride 32" in record["results"]["mobilevitv2_050"]["note"]
    capsys.readouterr()
    assert timm_sweep.main(["--names", "resnet18", "--json", str(first)]) == 0
    assert "0 checked now, 2 taken from" in capsys.readouterr().out
    timm_sweep.write_record(str(second), {"vgg11": {"status": "too_large", "params": 1}})
    assert timm_sweep.main(["--json", str(merged), "--merge", str(first), str(second)]) == 0
    assert sorted(timm_sweep.read_record(str(merged))) == ["mobilevitv2_050", "resnet18", "vgg11"]


def test_timm_sweep_compares_a_model_too_large_for_two_copies_on_shared_weights():
    timm = pytest.importorskip("timm")
    import torch

    from benchmarks.timm_sweep import check_one

    with torch.device("meta"):
        params = sum(p.numel() for p in timm.create_model("eva02_tiny_patch14_224", features_only=True).parameters())
    one_copy_gb = 4 * params / 2**30
    verdict = check_one("eva02_tiny_patch14_224", max_gb=1.5 * one_copy_gb)  # rotary buffers outside the state dict
    assert verdict["status"] == "equal" and verdict["shared_weights"] is True
    assert check_one("eva02_tiny_patch14_224", max_gb=0.5 * one_copy_gb)["status"] == "too_large"
    assert "shared_weights" not in check_one("eva02_tiny_patch14_224", max_gb=3 * one_copy_gb)
