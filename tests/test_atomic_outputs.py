"""Every file a command writes appears whole or not at all (issue 19): the benchmark's results, the metrics
page and its plots, a training run's curves. Each goes through `visionzoo.files`, so a write that fails
keeps the file that was there, leaves no temporary file, and is one error naming the file."""

import os

import pytest

from visionzoo.benchmark import BenchmarkResult, write_results
from visionzoo.errors import OutputError
from visionzoo.report.plots import Point, write_plot
from visionzoo.train.outputs import draw_curves


def _result() -> BenchmarkResult:
    import dataclasses

    fields = {f.name: None for f in dataclasses.fields(BenchmarkResult)}
    return BenchmarkResult(**{**fields, "model": "test_vit", "status": "ok"})


@pytest.mark.parametrize("name", ["r.csv", "r.json"])
def test_benchmark_results_are_written_whole(tmp_path, name):
    path = tmp_path / name
    write_results(path, [_result()])
    assert "test_vit" in path.read_text()
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match=r"cannot write .*file/r\.\w+: .*file is a file, not a folder"):
        write_results(tmp_path / "file" / name, [_result()])
    assert sorted(os.listdir(tmp_path)) == sorted(["file", name])


def _interrupted_savefig(monkeypatch):
    """Figures whose saving is killed half way (after some bytes reached the file)."""
    from matplotlib.figure import Figure

    def half_saved(self, fname, *args, **kwargs):
        with open(fname, "wb") as f:
            f.write(b"\x89PNG half")
        raise KeyboardInterrupt

    monkeypatch.setattr(Figure, "savefig", half_saved)


def test_a_plot_interrupted_while_saved_keeps_the_old_one(tmp_path, monkeypatch):
    path = tmp_path / "plot.png"
    points = [Point("a", 1.0, 70.0), Point("b", 2.0, 80.0)]
    write_plot(path, points, "GMACs", "title")
    before = path.read_bytes()
    _interrupted_savefig(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        write_plot(path, points, "GMACs", "title")
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["plot.png"]


def test_a_runs_curves_interrupted_while_saved_keep_the_old_ones(tmp_path, monkeypatch):
    rows = [{"epoch": 1, "step": 4, "lr": 0.1, "train_loss": 1.0, "eval_loss": 1.1, "eval_top1": 50.0}]
    draw_curves(tmp_path, rows)
    before = (tmp_path / "curves.png").read_bytes()
    _interrupted_savefig(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        draw_curves(tmp_path, rows * 2)
    assert (tmp_path / "curves.png").read_bytes() == before and os.listdir(tmp_path) == ["curves.png"]


def test_the_metrics_page_is_written_whole(tmp_path, monkeypatch):
    from visionzoo.report import page as page_module

    (tmp_path / "file").write_text("x")
    monkeypatch.setattr(page_module, "render", lambda page: "# the page\n")
    monkeypatch.setattr(page_module, "build_page", lambda user=None: None)
    page_module.generate(tmp_path / "out" / "2024.md", plots=False)
    assert (tmp_path / "out" / "2024.md").read_text() == "# the page\n"
    with pytest.raises(OutputError, match="cannot write .*file/2024.md"):
        page_module.generate(tmp_path / "file" / "2024.md", plots=False)
