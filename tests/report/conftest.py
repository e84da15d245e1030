"""Shared fixtures of the report tests: the user's own result files, as validate and benchmark write them."""

import json
from pathlib import Path

import pytest

from visionzoo.benchmark import BenchmarkResult, write_results

TEST_TAGS = ("test_byobnet.r160_in1k", "test_efficientnet.r160_in1k", "test_vit.r160_in1k")


@pytest.fixture(scope="session")
def user_result_files(tmp_path_factory) -> list[Path]:
    """A validate CSV of today's columns, a validate JSON with the eval-set/backend/precision fields, and a
    benchmark JSON of the three test tags' architectures at two batch sizes."""
    folder = tmp_path_factory.mktemp("user_results")
    validate_csv = folder / "validate.csv"
    validate_csv.write_text("model,tag,img_size,crop_pct,top1,top5,count\n"
                            "test_vit,r160_in1k,160,0.95,40.900,67.300,50000\n", encoding="utf-8")
    rows = [{"model": "test_byobnet", "tag": "r160_in1k", "img_size": 160, "top1": 45.125, "top5": 70.5,
             "backend": "onnxruntime", "precision": "int8", "torch_version": "2.14.1"},
            {"model": "test_efficientnet", "tag": "r160_in1k", "img_size": 160, "top1": 33.25, "top5": 55.0,
             "eval_set": "imagenet-v2"}]
    validate_json = folder / "validate.json"
    validate_json.write_text(json.dumps({"results": rows}), encoding="utf-8")
    speed = [BenchmarkResult(arch, 160, batch, "fp32", "cpu", "AMD EPYC test CPU", False, False, 1, "ok",
                             infer_img_per_s=per_s * batch, infer_ms=1000.0 / per_s, cpu_isa="avx512",
                             torch_version="2.14.1", visionzoo_version="0.1.0")
             for arch, per_s in (("test_byobnet", 500.0), ("test_efficientnet", 400.0), ("test_vit", 250.0))
             for batch in (1, 8)]
    benchmark = folder / "benchmark.json"
    write_results(benchmark, speed)
    return [validate_csv, validate_json, benchmark]
