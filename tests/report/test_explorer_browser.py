"""The metrics explorer as a person sees it: the committed page, and a page with the user's own results, in a
real headless Chromium (Debian's `chromium`, driven by Playwright; nothing is downloaded).

Without the browser these tests skip, saying why; with VISIONZOO_BROWSER_TESTS=required (CI sets it) they
fail instead.
"""

import io
import os
import shutil
from pathlib import Path

import pytest

from visionzoo import list_pretrained
from visionzoo.report.explorer import generate_html
from visionzoo.report.plots import Point, pareto_front

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "docs" / "metrics" / "2024.html"
CHROMIUM = os.environ.get("VISIONZOO_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# Chromium as a test runs it: no GPU, no first-run screens, no background traffic of its own
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _unavailable(reason: str):
    if os.environ.get("VISIONZOO_BROWSER_TESTS") == "required":
        pytest.fail(f"browser tests required but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """One Chromium for the module, with a fresh profile."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install playwright; no browser download needed)")
    if not Path(CHROMIUM).is_file():
        _unavailable(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            tmp_path_factory.mktemp("chromium-profile"), executable_path=CHROMIUM, args=CHROMIUM_ARGS,
            headless=True, viewport={"width": 1400, "height": 1000})
        yield context
        context.close()


class Tab:
    """One page of the browser, recording console errors and every request it makes."""

    def __init__(self, context):
        self.page = context.new_page()
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))

    def open(self, path: Path) -> None:
        self.errors.clear()
        self.requests.clear()
        self.page.goto(path.as_uri())
        self.page.wait_for_selector("#plot .scatterlayer")

    def cells(self, key: str) -> list[str]:
        return self.page.eval_on_selector_all(f'#table tbody td[data-key="{key}"]',
                                              "cells => cells.map(c => c.textContent)")

    def row_count(self) -> int:
        return self.page.eval_on_selector_all("#table tbody tr", "rows => rows.length")

    def point_count(self) -> int:
        return self.page.eval_on_selector_all("#plot .scatterlayer .trace .points path", "p => p.length")

    def point_positions(self) -> list[str]:
        return self.page.eval_on_selector_all("#plot .scatterlayer .trace .points path",
                                              "points => points.map(p => p.getAttribute('transform'))")

    def point_at(self, index: int) -> None:
        """Move the mouse onto a point: plotly finds the point under the mouse itself (its drag layer takes
        the pointer's events, not the point's element)."""
        box = self.page.locator("#plot .scatterlayer .trace .points path").nth(index).bounding_box()
        self.page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)

    def traces(self) -> list[dict]:
        """The plot's traces as plotly holds them (name, x, y, points' tags)."""
        return self.page.evaluate("() => document.getElementById('plot').data.map("
                                  "t => ({name: t.name, x: t.x, y: t.y, tags: t.customdata}))")

    def plottable_rows(self, x: str, y: str) -> int:
        return sum(a != "-" and b != "-" for a, b in zip(self.cells(x), self.cells(y), strict=True))


@pytest.fixture(scope="module")
def tab(browser):
    return Tab(browser)


@pytest.fixture
def committed(tab):
    tab.open(COMMITTED)
    return tab


@pytest.fixture(scope="module")
def user_page(tmp_path_factory, user_result_files) -> Path:
    """The explorer of the test tags, with the user's validate and benchmark files merged."""
    output = tmp_path_factory.mktemp("explorer") / "mine.html"
    generate_html(output, user_result_files, patterns="test_*")
    return output


def test_loads_without_console_errors_or_any_request_but_itself(tab, user_page):
    for path in (COMMITTED, user_page):
        tab.open(path)
        tab.point_at(0)
        tab.page.wait_for_selector("#plot .hoverlayer .hovertext")  # a hover label, drawn without error
        assert tab.errors == [], path
        assert tab.requests == [path.as_uri()], path


def test_one_table_row_per_registered_tag(committed):
    assert sorted(committed.cells("name")) == sorted(list_pretrained())
    assert committed.page.inner_text("#counts").startswith(f"{len(list_pretrained())} of ")


def _numbers(cells: list[str]) -> list[float]:
    assert all(c == "-" for c in cells[len([c for c in cells if c != "-"]):]), "no value: rows last"
    return [float(c) for c in cells if c != "-"]


def test_sorting_by_a_header_orders_the_rows(committed):
    header = committed.page.locator('#table th[data-key="top1"]')
    assert header.get_attribute("aria-sort") == "descending"  # the page opens best first
    top1 = _numbers(committed.cells("top1"))
    assert top1 == sorted(top1, reverse=True) and len(top1) > 40
    header.click()
    assert committed.page.locator('#table th[data-key="top1"]').get_attribute("aria-sort") == "ascending"
    assert _numbers(committed.cells("top1")) == sorted(top1)
    committed.page.locator('#table th[data-key="params_m"]').click()
    params = _numbers(committed.cells("params_m"))
    assert params == sorted(params, reverse=True)


def test_a_family_filter_hides_the_others_in_table_and_plot(committed):
    page = committed.page
    page.click('#filter-family button[data-all="false"]')
    assert committed.row_count() == 0 and committed.point_count() == 0
    page.check('#filter-family input[value="mambaout"]')
    families = committed.cells("family")
    assert families and set(families) == {"mambaout"}
    assert len(families) == sum(name.startswith("mambaout") for name in list_pretrained())
    assert [t["name"] for t in committed.traces()] == ["mambaout", "Pareto front"]
    assert committed.point_count() == committed.plottable_rows("gmacs", "top1") > 0


def test_the_legend_is_the_family_filter(committed):
    committed.page.locator("#plot .legend .traces", has_text="vit").locator(".legendtoggle").click()
    assert "vit" not in committed.cells("family") and committed.row_count() > 0
    assert not committed.page.is_checked('#filter-family input[value="vit"]')
    assert "vit" not in [t["name"] for t in committed.traces()]


def test_the_plot_has_a_point_per_visible_row_with_values(committed):
    page = committed.page
    assert committed.point_count() == committed.plottable_rows("gmacs", "top1") > 50
    page.select_option("#filter-label_space", "imagenet-12k")
    assert set(committed.cells("label_space")) == {"imagenet-12k"}
    assert committed.point_count() == committed.plottable_rows("gmacs", "top1") == 0  # no in1k result
    page.select_option("#filter-label_space", "")
    page.fill("#search", "mobilenetv4_conv")
    assert all("mobilenetv4_conv" in name for name in committed.cells("name"))
    assert committed.point_count() == committed.plottable_rows("gmacs", "top1") > 5


def test_changing_the_x_axis_moves_the_points(committed):
    before = committed.point_positions()
    committed.page.select_option("#x-axis", "params_m")
    after = committed.point_positions()
    assert len(after) == len(before) == committed.plottable_rows("params_m", "top1")
    assert sum(a != b for a, b in zip(before, after, strict=True)) > len(before) // 2
    assert committed.page.text_content("#plot .xtitle") == "params (M)"


def test_the_pareto_front_is_the_visible_points_front(committed):
    traces = committed.traces()
    points = [Point(tag, x, y) for t in traces[:-1]
              for tag, x, y in zip(t["tags"], t["x"], t["y"], strict=True)]
    front = traces[-1]
    assert front["name"] == "Pareto front"
    assert front["tags"] == [p.label for p in pareto_front(points)]
    assert len(front["tags"]) >= 5


def test_clicking_a_point_highlights_its_row(committed):
    committed.point_at(3)
    hover = committed.page.wait_for_selector("#plot .hoverlayer .hovertext").text_content()
    committed.page.mouse.down()
    committed.page.mouse.up()
    selected = committed.page.locator("#table tbody tr.selected")
    assert selected.count() == 1
    tag = selected.get_attribute("data-name")
    assert tag in {t for trace in committed.traces()[:-1] for t in trace["tags"]}
    assert tag in hover and "top-1" in hover and "GMACs" in hover


def test_the_column_chooser_hides_and_shows_columns(committed):
    page = committed.page
    assert page.locator('#table th[data-key="architecture"]').count() == 0  # hidden at first
    page.click("#column-chooser summary")
    page.uncheck('#columns input[value="license"]')
    page.check('#columns input[value="architecture"]')
    assert page.locator('#table th[data-key="license"]').count() == 0
    assert committed.cells("architecture")[0] in committed.cells("name")[0]


def test_the_users_results_appear_in_their_columns(tab, user_page):
    tab.open(user_page)
    headers = tab.page.eval_on_selector_all("#table th.yours", "hs => hs.map(h => h.textContent)")
    assert headers == ["your top-1", "your top-1 (onnxruntime, int8)", "your top-1 (imagenet-v2)",
                       "img/s (cpu, bs 1, fp32)", "latency ms (cpu, bs 1, fp32)",
                       "img/s (cpu, bs 8, fp32)", "latency ms (cpu, bs 8, fp32)"]
    rows = dict(zip(tab.cells("name"), zip(tab.cells("own_top1_0"), tab.cells("own_top1_1"),
                                           tab.cells("img_per_s_1"), strict=True), strict=True))
    assert rows == {"test_efficientnet.r160_in1k": ("-", "-", "3200.0"),
                    "test_byobnet.r160_in1k": ("-", "45.125", "4000.0"),
                    "test_vit.r160_in1k": ("40.900", "-", "2000.0")}
    assert tab.page.input_value("#x-axis") == "img_per_s_1"  # the plot opens on the user's speed
    speeds = sorted(x for trace in tab.traces()[:-1] for x in trace["x"])
    assert speeds == [2000.0, 3200.0, 4000.0]
    settings = tab.page.inner_text("#settings")
    assert "AMD EPYC test CPU" in settings and "2.14.1" in settings


def test_a_screenshot_is_not_blank(committed, tmp_path):
    from PIL import Image

    png = committed.page.screenshot(full_page=False)
    (tmp_path / "explorer.png").write_bytes(png)
    image = Image.open(io.BytesIO(png)).convert("RGB")
    colours = image.getcolors(maxcolors=1 << 20)
    assert len(colours) > 64, f"{len(colours)} colours: the page looks blank"
    plot = committed.page.locator("#plot").bounding_box()
    box = tuple(int(v) for v in (plot["x"], plot["y"], plot["x"] + plot["width"], plot["y"] + plot["height"]))
    marker_blue = sum(n for n, (r, g, b) in image.crop(box).getcolors(1 << 20) if b > 150 and r < 90)
    assert marker_blue > 50, "the plot has no coloured markers"
