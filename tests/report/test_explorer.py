"""The metrics explorer's data: every registered tag, the markdown page's figures, the user's columns, and a
page that needs nothing from outside (read from the committed page, and from small pages of the test tags)."""

import json
import re
from pathlib import Path

import pytest

from visionzoo import get_pretrained_cfg, list_pretrained
from visionzoo.report.columns import COLUMNS, Column, tag_entries
from visionzoo.report.explorer import build_explorer, explorer_data, render_html
from visionzoo.report.user_results import read_user_results

from .conftest import TEST_TAGS

ROOT = Path(__file__).resolve().parents[2]
HTML = ROOT / "docs" / "metrics" / "2024.html"
MARKDOWN = ROOT / "docs" / "metrics" / "2024.md"


def page_data(text: str) -> dict:
    """The data element of an explorer page, as its script reads it."""
    found = re.search(r'<script id="explorer-data" type="application/json">(.*?)</script>', text, re.S)
    return json.loads(found.group(1))


@pytest.fixture(scope="module")
def committed() -> dict:
    return page_data(HTML.read_text(encoding="utf-8"))


def _cells(data: dict, key: str) -> list[str]:
    index = [c["key"] for c in data["columns"]].index(key)
    return [row["t"][index] for row in data["rows"]]


def test_the_committed_page_has_every_registered_tag_once(committed):
    assert _cells(committed, "name") == sorted(list_pretrained())


def test_the_committed_page_prints_the_markdown_pages_figures(committed):
    # both pages come from the same rows: the explorer's figures at a tag's own size are the markdown's
    markdown = {}
    tables = MARKDOWN.read_text(encoding="utf-8").split("## Robustness")[0]  # the figures by family
    for line in tables.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) >= 7 and cells[0] != "model.tag" and not cells[0].startswith(":"):
            markdown[(cells[0], cells[1])] = (cells[2], cells[3], cells[4], cells[5])
    shown = list(zip(*(_cells(committed, k) for k in ("name", "img_size", "top1", "top5", "params_m",
                                                      "gmacs")), strict=True))
    compared = [(name, size) for name, size, *_ in shown if (name, size) in markdown]
    assert len(compared) >= 50
    for name, size, *figures in shown:
        if (name, size) in markdown:
            assert tuple(figures) == markdown[(name, size)], name


def test_the_published_robustness_figures_are_columns(committed):
    names = _cells(committed, "name")
    for eval_set in ("imagenet-real", "imagenet-v2", "imagenet-sketch", "imagenet-a", "imagenet-r"):
        shown = dict(zip(names, _cells(committed, f"{eval_set}_top1"), strict=True))
        cfg = get_pretrained_cfg("resnet50d.a1_in1k")
        published = [r.top1 for r in cfg.results_on(eval_set) if r.img_size == cfg.input_size[-1]]
        assert shown["resnet50d.a1_in1k"] == f"{published[0]:.3f}", eval_set
        assert shown["vit_so400m_patch14_siglip_378.webli"] == "-"  # a feature tower: none published


def test_the_page_loads_nothing_from_outside():
    text = HTML.read_text(encoding="utf-8")
    assert not re.search(r"<(script|link|img|iframe)\b[^>]*\b(src|href)=", text, re.I)
    assert "@import" not in text and "url(http" not in text
    assert text.count("<script") == 3  # the data, plotly.js, the glue: all inline


def test_columns_are_specs_and_print_as_the_markdown_page():
    keys = [c.key for c in COLUMNS]
    assert len(keys) == len(set(keys))
    top1 = next(c for c in COLUMNS if c.key == "top1")
    assert top1.numeric and top1.text(80.125) == "80.125" and top1.text(None) == "-"
    assert not next(c for c in COLUMNS if c.key == "family").numeric
    assert all(c.better in ("higher", "lower") for c in COLUMNS if c.numeric)


def test_a_tag_is_one_entry_at_its_own_size_with_its_best_size_beside():
    [entry], _ = tag_entries("mambaout_femto.in1k")
    assert [r.img_size for r in entry.rows] == [224, 288]
    assert entry.main.img_size == 224 and entry.best.img_size == 288
    assert entry.main.top1 == 78.88 and entry.best.top1 == 79.912
    [tower], _ = tag_entries("vit_so400m_patch14_siglip_378.webli")
    assert tower.main.top1 is None and tower.label_space == "none"


def test_a_new_column_is_one_line():
    column = Column("top1_err", "top-1 error", lambda e: 100 - e.main.top1, ".2f", better="lower")
    explorer = build_explorer(patterns="test_vit.*")
    data = explorer_data(type(explorer)(explorer.entries, explorer.columns + (column,)))
    assert data["columns"][-1]["numeric"] and data["rows"][0]["t"][-1] == "59.02"  # 100 - 40.982


def test_user_results_are_columns_per_setting(user_result_files):
    explorer = build_explorer(read_user_results(user_result_files), patterns="test_*")
    data = explorer_data(explorer)
    labels = {c["key"]: c["label"] for c in data["columns"] if c["group"] == "yours"}
    assert list(labels.values()) == [
        "your top-1", "your top-1 (onnxruntime, int8)", "your top-1 (imagenet-v2)",
        "img/s (cpu, bs 1, fp32)", "latency ms (cpu, bs 1, fp32)",
        "img/s (cpu, bs 8, fp32)", "latency ms (cpu, bs 8, fp32)"]
    assert [r["v"][0] for r in data["rows"]] == list(TEST_TAGS)
    texts = {r["v"][0]: dict(zip([c["key"] for c in data["columns"]], r["t"], strict=True))
             for r in data["rows"]}
    assert texts["test_vit.r160_in1k"]["own_top1_0"] == "40.900"
    assert texts["test_byobnet.r160_in1k"]["own_top1_1"] == "45.125"
    assert texts["test_efficientnet.r160_in1k"]["own_top1_2"] == "33.250"
    assert texts["test_vit.r160_in1k"]["own_top1_1"] == "-"
    assert texts["test_vit.r160_in1k"]["img_per_s_1"] == "2000.0"
    assert texts["test_vit.r160_in1k"]["latency_ms_1"] == "4.00"
    # the plot opens on the user's speed (the batch that measured most tags; ties: the larger batch)
    assert data["plot"] == {"x": "img_per_s_1", "y": "top1", "logx": True}
    page = render_html(explorer)
    assert "AMD EPYC test CPU" in page and "2.14.1" in page and "onnxruntime, int8" in page


def test_the_data_cannot_end_its_script_element():
    explorer = build_explorer(patterns="test_vit.*")
    bad = Column("note", "note", lambda e: "</script><script>alert(1)</script>")
    page = render_html(type(explorer)(explorer.entries, explorer.columns + (bad,)))
    data = page_data(page)
    assert data["rows"][0]["v"][-1] == "</script><script>alert(1)</script>"
    assert page.count("</script>") == 3


def test_the_readme_shows_the_explorer_and_how_to_add_your_measurements():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    shots = re.findall(r"!\[[^\]]*explorer[^\]]*\]\((docs/[^)]+\.png)\)", readme)
    assert shots, "the README's report section shows a screenshot of the explorer"
    png = (ROOT / shots[0]).read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) < 300_000
    assert "--results-file b.csv" in readme and "visionzoo report --html --results b.csv" in readme
