"""Reading the user's validate and benchmark results for the page."""

from visionzoo.benchmark import BenchmarkResult, write_results
from visionzoo.report.user_results import read_user_results


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
    assert list(user.accuracy) == [("test_vit.r160_in1k", 160)]
    assert user.own_accuracy("test_vit.r160_in1k", 160).top1 == 40.5
