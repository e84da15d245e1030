"""The committed metrics page is what `visionzoo report` generates, and it covers the whole source page."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from visionzoo.pretrained_cfg import all_pretrained_cfgs
from visionzoo.report.figures import load_page_figures
from visionzoo.report.page import build_page, load_layout, plot_files, render

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "metrics" / "2024.md"
# the hand-copied page the generated one replaces, kept as it was (including its mistakes)
SOURCE = ROOT / "tests" / "data" / "2024-model-metrics-source.md"
MOJIBAKE = {"â†’": "→"}  # the source page's mis-encoded arrow


@pytest.fixture(scope="module")
def generated() -> str:
    page = build_page()
    page.plots = plot_files(2024, with_throughput=False)
    return render(page)


def _source_tags() -> list[str]:
    rows = [line for line in SOURCE.read_text(encoding="utf-8").splitlines() if line.startswith("| ")]
    names = [row.split("|")[1].strip() for row in rows]
    return list(dict.fromkeys(n for n in names if n != "Model"))


def _source_headings() -> list[str]:
    headings = re.findall(r"^(#{2,3} .+)$", SOURCE.read_text(encoding="utf-8"), flags=re.MULTILINE)
    for bad, good in MOJIBAKE.items():
        headings = [h.replace(bad, good) for h in headings]
    return [h for h in headings if h not in ("## Model Naming Convention", "## Links")]


def test_committed_page_is_what_report_generates(generated):
    assert PAGE.read_text(encoding="utf-8") == generated, (
        "docs/metrics/2024.md is stale: regenerate it with `visionzoo report`")


def test_every_tag_of_the_source_page_is_on_the_page():
    # Fails until every model family is registered in this build: the page covers registered models only.
    real_name = {f.page_name: name for name, figures in load_page_figures().items() for f in figures
                 if f.page_name}
    page = PAGE.read_text(encoding="utf-8")
    missing = [n for n in _source_tags() if f"| {real_name.get(n, n)} |" not in page]
    assert not missing, f"{len(missing)} tags of the source page are not on docs/metrics/2024.md: {missing}"


def test_every_section_of_the_source_page_is_on_the_page():
    page = PAGE.read_text(encoding="utf-8").splitlines()
    missing = [h for h in _source_headings() if h not in page]
    assert not missing, f"sections of the source page missing from docs/metrics/2024.md: {missing}"


def test_source_sections_are_in_the_layout():
    headings = [f"{'#' * s.level} {s.heading}" for s in load_layout().sections]
    assert headings == _source_headings()
    used = {f.section for figures in load_page_figures().values() for f in figures}
    assert used <= {s.key for s in load_layout().sections}


def test_plots_exist_next_to_the_page_and_are_linked():
    page = PAGE.read_text(encoding="utf-8")
    for title, file in plot_files(2024, with_throughput=False):
        assert (PAGE.parent / file).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{file} is not a PNG"
        assert f"![{title}]({file})" in page and f"[{title}]({file})" in page


def test_corrections_list_the_i18n_siglip_name():
    corrections = PAGE.read_text(encoding="utf-8").split("## Corrections", 1)[1]
    assert ("| vit_so400m_patch16_siglip_256.webli_i18n | model name "
            "| vit_so400m_patch14_siglip_256.webli (i18n) |"
            in corrections)


def test_rows_are_the_measured_results(generated):
    for cfgs in all_pretrained_cfgs().values():
        for cfg in cfgs:
            if cfg.name in load_page_figures() and f"| {cfg.name} |" in generated:
                for result in cfg.results:
                    row = f"| {cfg.name} | {result.img_size} | {result.top1:.3f} | {result.top5:.3f} |"
                    assert row in generated


def test_import_stays_light():
    code = "import sys, visionzoo, visionzoo.report.page; sys.exit('matplotlib' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT / "src").returncode == 0


def test_robustness_rows_hold_the_published_figures_and_the_shifted_mean():
    from visionzoo import get_pretrained_cfg
    from visionzoo.report.robustness import robustness_rows, robustness_table

    rows = robustness_rows([get_pretrained_cfg("resnet50d.ra4_e3600_r224_in1k")])
    assert [(r.img_size, r.imagenet_top1) for r in rows] == [(288, 81.84), (224, 80.956)]
    # results-imagenet-a.csv etc. of the reference: V2 70.640, Sketch 30.126, A 16.587, R 42.157 at 288
    assert rows[0].top1["imagenet-a"] == 16.587 and rows[0].top1["imagenet-real"] == 86.998
    assert rows[0].shifted_mean == pytest.approx((70.640 + 30.126 + 16.587 + 42.157) / 4, abs=1e-12)
    line = robustness_table(rows)[2]
    assert line.startswith("| resnet50d.ra4_e3600_r224_in1k | 288 | 81.840 | 86.998 (+5.16) "
                           "| 70.640 (-11.20) |")
    assert line in PAGE.read_text(encoding="utf-8")  # the page's tags are on the committed page's table
