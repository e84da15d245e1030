"""`visionzoo report`: page and plots written, the user's results merged, one-line errors."""

import builtins
import json
from pathlib import Path

from visionzoo import list_pretrained
from visionzoo.benchmark import BenchmarkResult, write_results
from visionzoo.cli.main import main

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "metrics" / "2024.md"
COMMITTED_HTML = COMMITTED.with_suffix(".html")


def test_report_writes_the_committed_page_and_its_plots(tmp_path, capsys):
    output = tmp_path / "docs" / "2024.md"
    assert main(["report", "--output", str(output)]) == 0
    assert output.read_text(encoding="utf-8") == COMMITTED.read_text(encoding="utf-8")
    assert sorted(p.name for p in output.parent.glob("*.png")) == [
        "2024-robustness.png", "2024-top1-vs-gmacs.png", "2024-top1-vs-params.png"]
    assert capsys.readouterr().out.startswith(f"wrote {output} and 3 plots: ")


def test_report_html_writes_the_committed_explorer(tmp_path, capsys):
    output = tmp_path / "docs" / "2024.html"
    assert main(["report", "--html", "--output", str(output)]) == 0
    assert output.read_text(encoding="utf-8") == COMMITTED_HTML.read_text(encoding="utf-8"), (
        "docs/metrics/2024.html is stale: regenerate it with `visionzoo report --html`")
    assert capsys.readouterr().out == f"wrote {output}: {len(list_pretrained())} tags\n"
    assert [p.name for p in output.parent.iterdir()] == ["2024.html"]  # no plots, no temporary file


def _user_results(tmp_path: Path) -> list[str]:
    validate = tmp_path / "validate.csv"
    validate.write_text("model,tag,img_size,crop_pct,top1,top5,count,eval_set,scored_classes\n"
                        "test_vit,r160_in1k,160,0.95,40.900,67.300,50000,,\n"
                        "test_vit,r160_in1k,160,0.95,2.500,13.000,7500,imagenet-a,200\n"
                        "test_vit,r160_in1k,160,0.95,0.100,1.000,7500,imagenet-a,\n"  # 1000-way: left out
                        "not_a_model,x,160,0.95,1.0,2.0,10,,\n", encoding="utf-8")
    # the reference's columns, in a file named as the reference names its ImageNet-R results
    (tmp_path / "results-imagenet-r.csv").write_text(
        "model,top1,top1_err,top5,top5_err,param_count,img_size,crop_pct,interpolation\n"
        "test_vit.r160_in1k,5.100,94.900,20.000,80.000,0.37,160,0.950,bicubic\n", encoding="utf-8")
    # the shape `visionzoo validate` writes as JSON; a row without a tag is of weights that are no tag's
    rows = [{"model": "vit_betwixt_patch16_reg4_gap_384", "tag": "sbb2_e200_in12k_ft_in1k", "img_size": 384,
             "top1": 86.5, "top5": 98.0},
            {"model": "vit_betwixt_patch16_reg4_gap_256", "tag": None, "img_size": 256, "top1": 1.0,
             "top5": 2.0}]
    (tmp_path / "validate.json").write_text(json.dumps({"model": "vit_betwixt_patch16_reg4_gap_384",
                                                        "results": rows}))
    speed = [BenchmarkResult("test_vit", 160, 8, "bf16", "cuda:0", "NVIDIA H100", False, False, 16, "ok",
                             infer_img_per_s=12345.6),
             BenchmarkResult("vit_betwixt_patch16_reg4_gap_256", 256, 8, "bf16", "cuda:0", "NVIDIA H100",
                             False, False, 16, "ok", infer_img_per_s=2345.6),
             BenchmarkResult("vit_betwixt_patch16_reg4_gap_384", 384, 8, "bf16", "cuda:0", "NVIDIA H100",
                             False, False, 16, "failed", error="OutOfMemoryError")]
    write_results(tmp_path / "bench.json", speed)
    return [str(validate), str(tmp_path / "validate.json"), str(tmp_path / "bench.json"),
            str(tmp_path / "results-imagenet-r.csv")]


def test_user_results_add_own_top1_throughput_columns_and_plot(tmp_path):
    output = tmp_path / "2024.md"
    assert main(["report", "--output", str(output), "--results", *_user_results(tmp_path)]) == 0
    page = output.read_text(encoding="utf-8")
    assert ("| model.tag | img size | top-1 | own top-1 (diff) | top-5 | params (M) | GMACs "
            "| img/s (cuda, bs 8, bf16) |") in page
    assert "| test_vit.r160_in1k | 160 | 40.982 | 40.900 (-0.082) | 67.382 | 0.37 | 0.04 | 12345.6 |" in page
    assert ("| vit_betwixt_patch16_reg4_gap_256.sbb2_e200_in12k_ft_in1k | 256 | 85.734 | - | 97.610 | 60.40 "
            "| 16.50 | 2345.6 |") in page
    assert ("| vit_betwixt_patch16_reg4_gap_384.sbb2_e200_in12k_ft_in1k | 384 | 86.618 | 86.500 (-0.118) "
            "| 98.010 | 60.60 | 39.66 | - |") in page
    assert "on cuda: NVIDIA H100" in page
    section = page.split("## Robustness", 1)[1]
    robustness = next(line for line in section.splitlines() if line.startswith("| test_vit.r160_in1k | 160 "))
    assert "| 2.280 (-38.70); own 2.500 |" in robustness and "; own 5.100 |" in robustness
    assert robustness.count("own") == 2
    assert "![top-1 vs measured throughput](2024-top1-vs-throughput.png)" in page
    assert (tmp_path / "2024-top1-vs-throughput.png").read_bytes()[:4] == b"\x89PNG"


def test_no_plots_writes_the_page_only(tmp_path):
    output = tmp_path / "2024.md"
    assert main(["report", "--output", str(output), "--no-plots"]) == 0
    assert not list(tmp_path.glob("*.png"))
    assert ".png" not in output.read_text(encoding="utf-8")


def test_errors_are_one_line_with_the_fix(tmp_path, capsys, monkeypatch):
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps([{"model": "test_vit", "note": "nothing usable"}]), encoding="utf-8")
    cases = [
        (["--output", str(tmp_path / "page.html")], "name it .md"),
        (["--html", "--output", str(tmp_path / "page.md")], "name it .html"),
        (["--results", str(tmp_path / "missing.csv")], "does not exist"),
        (["--results", str(empty)], "holds no validate or benchmark result"),
    ]
    for args, message in cases:
        assert main(["report", "--output", str(tmp_path / "p.md"), *args]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("visionzoo report: error:") and message in err and "\n" not in err

    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    assert main(["report", "--output", str(tmp_path / "p.md")]) == 2
    assert "pip install 'visionzoo[report]' (or pass --no-plots)" in capsys.readouterr().err
