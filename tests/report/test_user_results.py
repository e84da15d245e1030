"""Reading the user's validate and benchmark results for the page."""

import pytest

from visionzoo.benchmark import BenchmarkResult, write_results
from visionzoo.errors import UserError
from visionzoo.report import user_results
from visionzoo.report.user_results import SettingField, Speed, read_user_results


def test_benchmark_settings_are_columns_in_benchmark_order(tmp_path):
    results = [BenchmarkResult("test_vit", 160, batch, precision, "cpu", "a cpu", False, False, 1, "ok",
                               infer_img_per_s=float(batch))
               for precision in ("bf16", "fp16", "fp32") for batch in (8, 1)]
    write_results(tmp_path / "bench.csv", results)
    user = read_user_results([tmp_path / "bench.csv"])
    assert [s.label for s in user.settings] == [
        "cpu, bs 1, fp32", "cpu, bs 1, bf16", "cpu, bs 1, fp16",
        "cpu, bs 8, fp32", "cpu, bs 8, bf16", "cpu, bs 8, fp16"]
    # throughput depends on the architecture, not the weights: every tag of the arch gets it
    assert user.throughput(user.settings[3], "test_vit.r160_in1k", 160) == 8.0
    assert user.throughput(user.settings[3], "test_vit.r160_in1k", 224) is None


def test_accuracy_needs_a_tag_and_a_registered_model(tmp_path):
    (tmp_path / "v.csv").write_text("model,tag,img_size,top1,top5\n"
                                    "test_vit.r160_in1k,,160,40.5,67.0\n"
                                    "test_vit,,160,1.0,2.0\n"
                                    "unknown_arch,x,160,1.0,2.0\n"
                                    # model folders (here gone since): results of no registered model
                                    "runs/gone/best,,32,97.0,100.0\n"
                                    "local-dir:runs/gone/best,,32,97.0,100.0\n"
                                    "hf-hub:someone/gone,,32,97.0,100.0\n", encoding="utf-8")
    user = read_user_results([tmp_path / "v.csv"])
    [setting] = user.accuracy_settings
    assert list(user.accuracy[setting]) == [("test_vit.r160_in1k", 160)]
    assert user.own_accuracy(setting, "test_vit.r160_in1k", 160).top1 == 40.5
    assert setting.label == ""  # ImageNet, eager, fp32: the usual setting needs no label


def test_validate_settings_are_told_apart_by_eval_set_backend_and_precision(tmp_path):
    (tmp_path / "v.csv").write_text("model,img_size,top1,top5,eval_set,backend,precision\n"
                                    "test_vit.r160_in1k,160,40.5,67.0,,,\n"
                                    "test_vit.r160_in1k,160,40.1,66.0,,onnxruntime,int8\n"
                                    "test_vit.r160_in1k,160,30.0,55.0,imagenet-v2,,\n", encoding="utf-8")
    user = read_user_results([tmp_path / "v.csv"])
    assert [s.label for s in user.accuracy_settings] == ["", "onnxruntime, int8", "imagenet-v2"]
    assert [user.own_accuracy(s, "test_vit.r160_in1k", 160).top1 for s in user.accuracy_settings] == [
        40.5, 40.1, 30.0]
    # a file that does not record its precision is not said to be fp32
    assert user.accuracy_settings[0].description == "eval_set imagenet, backend eager, precision not recorded"


def test_a_new_setting_field_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(user_results, "ACCURACY_FIELDS",
                        user_results.ACCURACY_FIELDS + (SettingField("crop_pct", "", label="crop {}"),))
    (tmp_path / "v.csv").write_text("model,img_size,top1,top5,crop_pct\n"
                                    "test_vit.r160_in1k,160,40.5,67.0,1.0\n"
                                    "test_vit.r160_in1k,160,40.9,67.0,0.95\n", encoding="utf-8")
    user = read_user_results([tmp_path / "v.csv"])
    assert [s.label for s in user.accuracy_settings] == ["crop 0.95", "crop 1.0"]


def test_a_benchmark_record_without_its_batch_size_is_a_one_line_error(tmp_path):
    (tmp_path / "b.csv").write_text("model,img_size,infer_img_per_s\ntest_vit,160,100.0\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"b\.csv: a result of test_vit has no batch_size"):
        read_user_results([tmp_path / "b.csv"])


def test_speed_keeps_latency_and_the_machine_it_was_measured_on(tmp_path):
    results = [BenchmarkResult("test_vit", 160, 8, "fp32", "cuda:1", "NVIDIA H100", False, False, 4, "ok",
                               infer_img_per_s=800.0, infer_ms=10.0, torch_version="2.14.1")]
    write_results(tmp_path / "b.json", results)
    user = read_user_results([tmp_path / "b.json"])
    [setting] = user.settings
    assert setting.label == "cuda, bs 8, fp32"
    assert user.speed_of(setting, "test_vit.r160_in1k", 160) == Speed(800.0, 10.0)
    assert user.describe(setting) == {"device_name": "NVIDIA H100", "threads": "4", "torch_version": "2.14.1"}
