"""The benchmark's structure, failure handling and results files (tiny models, minimal runs; nothing
timed)."""

import csv
import json

import pytest
import torch

import visionzoo.benchmark as benchmark
from visionzoo.benchmark import (
    RESULT_FIELDS,
    BenchmarkResult,
    PeakMemory,
    Timing,
    benchmark_model,
    write_results,
)

CPU = torch.device("cpu")


def test_timing_is_median_with_quartiles_and_range():
    timing = Timing.of([4.0, 1.0, 3.0, 2.0, 5.0])
    assert (timing.median, timing.p25, timing.p75, timing.min, timing.max) == (3.0, 2.0, 4.0, 1.0, 5.0)
    assert Timing.of([2.0]) == Timing(2.0, 2.0, 2.0, 2.0, 2.0)


def test_every_setting_is_measured_with_train_step_and_memory():
    seen = []
    results = benchmark_model("test_vit", 160, [1, 2], ["fp32", "bf16"], CPU, train=True, warmup=0, runs=2,
                              on_result=seen.append)
    assert seen == results
    assert [(r.batch_size, r.precision) for r in results] == [(1, "fp32"), (2, "fp32"), (1, "bf16"),
                                                              (2, "bf16")]
    for r in results:
        assert r.status == "ok", r.error
        assert r.params_m == pytest.approx(0.37, abs=0.01) and r.gmacs > 0
        assert r.infer_img_per_s > 0 and r.train_img_per_s > 0
        assert r.infer_ms_min <= r.infer_ms_p25 <= r.infer_ms <= r.infer_ms_p75 <= r.infer_ms_max
        assert r.infer_peak_mem_mb > 0 and r.train_peak_mem_mb > 0 and r.memory_measure.startswith("cpu")
        assert (r.warmup, r.runs, r.device, r.img_size) == (0, 2, "cpu", 160)


def test_a_failing_setting_is_recorded_and_the_run_goes_on(monkeypatch):
    measure = benchmark.measure_inference

    def out_of_memory_at_batch_2(name, img_size, batch_size, *args):
        if batch_size == 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB\nmore detail")
        return measure(name, img_size, batch_size, *args)

    monkeypatch.setattr(benchmark, "measure_inference", out_of_memory_at_batch_2)
    results = benchmark_model("test_vit", 160, [1, 2, 3], ["fp32"], CPU, warmup=0, runs=1)
    assert [r.status for r in results] == ["ok", "failed", "ok"]
    failed = results[1]
    assert failed.error == "OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"
    assert failed.infer_img_per_s is None and failed.params_m is not None


def test_a_model_that_cannot_be_built_fails_every_setting(monkeypatch):
    def broken(name, img_size):
        raise RuntimeError("no kernel for this")

    monkeypatch.setattr("visionzoo.benchmark.model_macs", broken)
    results = benchmark_model("test_vit", 160, [1, 2], ["fp32"], CPU, warmup=0, runs=1)
    assert [(r.status, r.error) for r in results] == [("failed", "RuntimeError: no kernel for this")] * 2


def test_fixed_size_model_at_another_size_counts_its_own_parameters():
    (at_224,) = benchmark_model("test_vit", 224, [1], ["fp32"], CPU, warmup=0, runs=1)
    (at_160,) = benchmark_model("test_vit", 160, [1], ["fp32"], CPU, warmup=0, runs=1)
    assert at_224.params_m > at_160.params_m  # a longer position embedding
    assert at_224.gmacs > at_160.gmacs


def test_results_files_round_trip(tmp_path):
    results = [BenchmarkResult("test_vit", 160, 1, "fp32", "cpu", "a cpu", False, False, 1, "ok",
                               params_m=0.37, gmacs=0.04, infer_img_per_s=100.0, infer_ms=10.0),
               BenchmarkResult("test_vit", 160, 64, "fp16", "cpu", "a cpu", False, False, 1, "failed",
                               error="RuntimeError: boom")]
    write_results(tmp_path / "r.csv", results)
    rows = list(csv.DictReader((tmp_path / "r.csv").open()))
    assert list(rows[0]) == RESULT_FIELDS
    assert [(r["status"], r["error"], r["infer_img_per_s"]) for r in rows] == [
        ("ok", "", "100.0"), ("failed", "RuntimeError: boom", "")]
    write_results(tmp_path / "sub" / "r.json", results)
    document = json.loads((tmp_path / "sub" / "r.json").read_text())
    assert document["kind"] == "benchmark" and "torch" in document
    assert [BenchmarkResult(**r) for r in document["results"]] == results
    with pytest.raises(ValueError, match=r"\.csv or \.json"):
        write_results(tmp_path / "r.txt", results)


def test_peak_memory_on_cpu_says_what_it_measures():
    with PeakMemory(CPU) as memory:
        block = torch.ones(4 * 2**20)  # 16 MiB
    assert memory.peak_mb >= block.numel() * 4 / 2**20
    assert memory.kind.startswith("cpu peak RSS")
