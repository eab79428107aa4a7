"""The whole pipeline: every notebook runs in the smoke profile, the site builds with warnings as
errors, and a real headless browser shows its pages with typeset math and images, offline."""

import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from ipta import runner

pytestmark = [pytest.mark.slow, pytest.mark.book]

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@pytest.fixture(scope="module")
def smoke_cache(tmp_path_factory):
    """The cache the smoke book fills (and JupyterLab's student run then reads)."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def smoke_book(tmp_path_factory, smoke_cache):
    """A copy of the project with every notebook executed in the smoke profile and the site built."""
    root = tmp_path_factory.mktemp("project")
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(ROOT / name, root / name)
    shutil.copytree(ROOT / "book", root / "book", ignore=shutil.ignore_patterns("executed"))
    shutil.copytree(ROOT / "notebooks", root / "notebooks",
                    ignore=shutil.ignore_patterns("*.ipynb", "kernel-ipc-*"))
    env = dict(os.environ, IPTA_CACHE_DIR=str(smoke_cache))
    ipta = [sys.executable, "-m", "ipta.cli", "--root", str(root)]
    subprocess.run([*ipta, "run", "--profile", "smoke"], check=True, env=env)
    subprocess.run([*ipta, "book"], check=True, env=env)
    return root


def test_every_notebook_ran_in_the_smoke_profile_without_an_error_output(smoke_book):
    chapters = runner.list_chapters(smoke_book)
    assert chapters, "no notebooks found"
    for chapter in chapters:
        nb = json.loads((smoke_book / "book" / "executed" / f"{chapter}.ipynb").read_text())
        outputs = [o for c in nb["cells"] for o in c.get("outputs", [])]
        assert not [o for o in outputs if o["output_type"] == "error"], chapter
        assert any("Run settings" in "".join(o.get("data", {}).get("text/markdown", ""))
                   for o in outputs), f"{chapter} does not show its run settings"
        streams = "".join("".join(o.get("text", "")) for o in outputs if o["output_type"] == "stream")
        assert "TqdmWarning" not in streams, f"{chapter} prints tqdm's widget warning"
        # Any tqdm redraw, whatever its postfix (the SAE bar ends in ", loss=...]").
        bars = re.findall(r"\d+%\|[^\n]*\||\d+it \[\d+:\d+", streams)
        assert not bars, f"{chapter} prints progress bars: {bars[:2]}"
        # A cold cache, and the kernel itself drew no bar (not one filtered out afterwards).
        assert nb["metadata"]["ipta"]["progress_lines_dropped"] == 0, chapter
        assert "Kernel is running over TCP" not in streams
        values = "".join("".join(o.get("data", {}).get("text/plain", "")) for o in outputs
                         if o["output_type"] == "execute_result")
        assert "PosixPath(" not in values, f"{chapter} shows a path as a cell's value"
        widgets = [o for o in outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
        assert not widgets, f"{chapter} shows Jupyter widgets (they load scripts from a CDN)"


def test_every_page_of_the_table_of_contents_was_built(smoke_book):
    html = smoke_book / "_build" / "html"
    for page in ["book/intro", "book/reproduce", "book/references",
                 *(f"book/executed/{c}" for c in runner.list_chapters(smoke_book))]:
        assert (html / f"{page}.html").is_file(), page
    assert (html / "_static" / "mathjax" / "tex-chtml.js").is_file()


def test_the_reproduction_table_renders_as_one_table_with_a_row_per_line(smoke_book):
    """Each row of book/reproduce.md is a row of one HTML table: a line that is not a table
    row (a comment between rows, say) would turn every row after it into plain text."""
    source = (smoke_book / "book" / "reproduce.md").read_text().splitlines()
    rows = [line for line in source if line.startswith("| ")][1:]  # after the header
    page = (smoke_book / "_build" / "html" / "book" / "reproduce.html").read_text()
    assert page.count("<table") == 1
    body = page[page.index("<tbody"):page.index("</tbody>")]
    assert body.count("<tr") == len(rows) >= 19
    assert "| Theorem" not in page and "| Table 2" not in page


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not (CHROMIUM and CHROMEDRIVER):
        if os.environ.get("IPTA_REQUIRE_BROWSER"):
            pytest.fail("IPTA_REQUIRE_BROWSER is set but chromium/chromedriver are not installed")
        pytest.skip("chromium and chromedriver are not installed (Debian: apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1400,1600", f"--user-data-dir={tmp_path_factory.mktemp('chrome')}"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def site(smoke_book):
    """The built site served on loopback (fonts and scripts load as they would for a reader)."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler,
                                directory=str(smoke_book / "_build" / "html"))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _open(browser, url, wait_js="return true", timeout=30):
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(url)
    WebDriverWait(browser, timeout).until(lambda d: d.execute_script(
        "return document.readyState === 'complete'") and d.execute_script(wait_js))


TYPESET = "return document.querySelectorAll('mjx-container').length > 0"
# The page's text without code blocks and typeset math (code may hold TeX in plot labels).
PROSE = ("const m = document.querySelector('main').cloneNode(true);"
         "m.querySelectorAll('pre, code, mjx-container, .cell_output').forEach(e => e.remove());"
         "return m.innerText;")


def _external_requests(browser, base):
    names = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    return [n for n in names if not n.startswith(base) and not n.startswith("data:")]


def test_the_introduction_shows_typeset_math_with_no_network(browser, site, tmp_path):
    _open(browser, f"{site}/book/intro.html", TYPESET)
    assert browser.execute_script("return document.querySelectorAll('mjx-merror').length") == 0
    assert "$$" not in browser.find_element("tag name", "main").text
    assert _external_requests(browser, site) == []
    browser.save_screenshot(str(tmp_path / "intro.png"))


@pytest.mark.parametrize("chapter", runner.list_chapters(ROOT))
def test_each_chapter_shows_its_figures_and_math(browser, site, smoke_book, chapter):
    _open(browser, f"{site}/book/executed/{chapter}.html")
    images = browser.execute_script(
        "return Array.from(document.querySelectorAll('main img'))"
        ".map(i => [i.getAttribute('src'), i.complete && i.naturalWidth > 0])")
    assert images, f"{chapter} shows no figure"
    uncaptioned = browser.execute_script(  # every figure numbered, captioned, with alt text
        "return Array.from(document.querySelectorAll('main img')).filter(i => "
        "!i.closest('figure') || !i.closest('figure').querySelector('figcaption .caption-number')"
        " || !(i.getAttribute('alt') || '').trim()).map(i => i.getAttribute('src'))")
    assert not uncaptioned, f"{chapter}: figures without a number, caption or alt text: {uncaptioned}"
    too_wide = browser.execute_script(  # drawn for the column: not shrunk to fit it
        "return Array.from(document.querySelectorAll('main img'))"
        ".filter(i => i.naturalWidth > 1.1 * i.getBoundingClientRect().width)"
        ".map(i => [i.getAttribute('src'), i.naturalWidth])")
    assert not too_wide, f"{chapter}: figures shrunk to fit the page: {too_wide}"
    first_cells = browser.execute_script(  # textContent: the table is folded (collapsed)
        "return Array.from(document.querySelectorAll('main details table td:first-child'))"
        ".map(td => td.textContent)")
    assert "profile" in first_cells, f"{chapter}: the run-settings table is not rendered as a table"
    summary = browser.execute_script(
        "return document.querySelector('main details.ipta-run-settings summary').innerText")
    assert "Run settings: profile smoke" in summary, summary
    assert all(ok for _, ok in images), [src for src, ok in images if not ok]
    if browser.execute_script("return document.querySelectorAll('.math').length") > 0:
        _open(browser, f"{site}/book/executed/{chapter}.html", TYPESET)
    assert _external_requests(browser, site) == []
    prose = browser.execute_script(PROSE)
    raw_tex = re.findall(r"\$\$|\$\\[a-zA-Z]+|\\(?:text|frac|mathbf|hat|sigma|log)\b", prose)
    assert not raw_tex, f"{chapter}: math left untypeset in the prose: {raw_tex[:5]}"


def _toc_pages():
    import yaml

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]] + [c["file"] for part in toc["parts"] for c in part["chapters"]]
    return [f"{f}.html" for f in files]


# Every folded block opened, then each table's drawn width against its page's text column.
TABLES_WIDER_THAN_THE_COLUMN = """
document.querySelectorAll('main details').forEach(d => d.open = true);
const column = document.querySelector('main article') || document.querySelector('main');
const width = column.getBoundingClientRect().width;
return Array.from(column.querySelectorAll('table')).map(t => {
  const w = Math.max(t.getBoundingClientRect().width, t.scrollWidth);
  const head = Array.from(t.querySelectorAll('th')).slice(0, 4).map(h => h.textContent.trim());
  return [Math.round(w), Math.round(width), head.join(' | ')];
}).filter(([w, c]) => w > c + 1);
"""


@pytest.mark.parametrize("page", _toc_pages())
def test_no_table_is_wider_than_its_column_at_1400_px(browser, site, page):
    """At 1400 px every table, folded ones opened, fits the text column: no sideways scroll."""
    _open(browser, f"{site}/{page}")
    assert browser.execute_script("return window.innerWidth") >= 1380
    too_wide = browser.execute_script(TABLES_WIDER_THAN_THE_COLUMN)
    assert not too_wide, f"{page}: tables wider than the column (width, column, header): {too_wide}"


# ------------------------------------------------------------------ the classroom in JupyterLab
LAB_SETTINGS = {
    # Every cell rendered, not only those scrolled into view, so the page can be read whole.
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false"},
}


@pytest.fixture(scope="module")
def lab(tmp_path_factory, smoke_book, smoke_cache):
    """JupyterLab (with jupyterlab-myst) on localhost over a folder holding the student
    notebooks, the theory chapter's set to the smoke profile, and the published chapters:
    ``(url, folder)``."""
    import socket
    import time
    import urllib.request

    import nbformat

    from ipta.classroom import _with_profile

    root = tmp_path_factory.mktemp("lab")
    subprocess.run([sys.executable, "-m", "ipta.cli", "--root", str(smoke_book), "student",
                    str(root / "student")], check=True, capture_output=True)
    student = root / "student" / "01_theory.ipynb"
    nb = nbformat.read(student, as_version=4)
    for cell in nb.cells:
        if "parameters" in cell.metadata.get("tags", []):
            cell.source = _with_profile(cell.source, "smoke")  # seconds, on the book's cache
    nbformat.write(nb, student)
    shutil.copytree(smoke_book / "book" / "executed", root / "published")
    settings = root / ".settings"
    for name, values in LAB_SETTINGS.items():
        (settings / name).parent.mkdir(parents=True, exist_ok=True)
        (settings / name).write_text(json.dumps(values))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = open(root / "lab.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
         "--ServerApp.token=", "--ServerApp.password=", f"--ServerApp.root_dir={root}",
         f"--LabApp.user_settings_dir={settings}",
         f"--LabApp.workspaces_dir={root / '.workspaces'}", "--allow-root"],
        env=dict(os.environ, IPTA_CACHE_DIR=str(smoke_cache)), stdout=log,
        stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{url}/api", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail(f"JupyterLab did not start: {(root / 'lab.log').read_text()[-2000:]}")
        yield url, root
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


RENDERED_MARKDOWN = """
return Array.from(document.querySelectorAll('.jp-MarkdownCell .myst'))
  .map(e => e.textContent).join('\\n');
"""
RAW_MYST = re.compile(r"\{(?:eval|glue[:a-z]*|figure|exercise|admonition|solution[-a-z]*)\}|"
                      r"^:(?:name|alt|label|class):|```", re.M)


def _lab_open(browser, url, path):
    from selenium.webdriver.support.ui import WebDriverWait

    # ?reset: the notebook alone, not the tabs an earlier test left in the saved workspace (a
    # restored tab can become the current one after this one opens, and every query below
    # reads the whole page)
    browser.get(f"{url}/lab/tree/{path}?reset")
    WebDriverWait(browser, 90).until(lambda d: d.execute_script(
        "return document.querySelectorAll('.jp-MarkdownCell .myst').length > 3"))
    assert browser.execute_script(
        "return document.querySelectorAll('.jp-NotebookPanel').length") == 1


def _expected_numbers(published, shown=None):
    """The texts the {eval} roles of ``shown`` (default: the published notebook itself) show,
    from the values the published notebook glued."""
    import nbformat

    from ipta import prose

    values = prose.Glued(prose.glued_in(nbformat.read(published, as_version=4)))
    nb = nbformat.read(shown or published, as_version=4)
    return {repr(values[f"{key}:{spec}" if spec else key])
            for c in nb.cells if c.cell_type == "markdown"
            for key, spec in map(prose.parse, prose.ROLE.findall(c.source))}


def _rendered_text(browser, expected, timeout=90):
    """The notebook's rendered Markdown once every ``expected`` text shows in it (JupyterLab
    renders cells one after another; on a busy machine that takes a while), or at ``timeout``."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        text = browser.execute_script(RENDERED_MARKDOWN)
        if all(t in text for t in expected) or time.monotonic() > deadline:
            return text
        time.sleep(1)


def _figures_drawn(browser, wanted=5, timeout=60):
    """How many figures JupyterLab has drawn, once ``wanted`` are (they load after the text)
    or at ``timeout``."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        drawn = browser.execute_script(
            "return Array.from(document.querySelectorAll('.jp-MarkdownCell img'))"
            ".filter(i => i.complete && i.naturalWidth > 100).length")
        if drawn >= wanted or time.monotonic() > deadline:
            return drawn
        time.sleep(1)


def test_a_published_chapter_opened_in_jupyterlab_shows_its_figures_and_numbers(lab, browser):
    """Without running anything: the numbers come from each Markdown cell's stored results,
    the figures from figures/ beside the notebook, and no MyST source shows."""
    url, root = lab
    _lab_open(browser, url, "published/01_theory.ipynb")
    expected = _expected_numbers(root / "published" / "01_theory.ipynb")
    text = _rendered_text(browser, expected)
    assert not RAW_MYST.findall(text), RAW_MYST.findall(text)[:5]
    assert "IPython.core.display" not in text  # a sentence quoted as its display object
    missing = [t for t in expected if t not in text]
    assert len(expected) > 10 and not missing, f"not shown in JupyterLab: {missing[:10]}"
    assert _figures_drawn(browser) >= 5


def test_a_student_who_runs_all_in_jupyterlab_sees_the_figures_and_numbers(lab, browser):
    """The student notebook, Run All in JupyterLab (smoke profile): every figure drawn in its
    captioned {figure}, every number the prose quotes computed by the kernel, the exercises'
    checks saying "not done yet", and no MyST source visible."""
    import time

    from selenium.webdriver.common.by import By

    url, root = lab
    _lab_open(browser, url, "student/01_theory.ipynb")
    browser.find_element(By.XPATH, "//li[contains(@class,'lm-MenuBar-item')]"
                                   "//div[text()='Run']").click()
    browser.find_element(By.XPATH, "//li[contains(@class,'lm-Menu-item')]"
                                   "//div[text()='Run All Cells']").click()
    prompts = ("return Array.from(document.querySelectorAll('.jp-CodeCell .jp-InputPrompt'))"
               ".map(e => e.innerText.trim())")
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        shown = browser.execute_script(prompts)
        if shown and all(re.fullmatch(r"\[\d+\]:", p) for p in shown):
            break
        time.sleep(2)
    else:
        pytest.fail(f"Run All did not finish: prompts {shown}")
    expected = _expected_numbers(root / "published" / "01_theory.ipynb",
                                 root / "student" / "01_theory.ipynb")
    text = _rendered_text(browser, expected)
    assert not RAW_MYST.findall(text), RAW_MYST.findall(text)[:5]
    assert "IPython.core.display" not in text  # a sentence quoted as its display object
    missing = [t for t in expected if t not in text]
    assert not missing, f"numbers the book shows but JupyterLab does not: {missing[:10]}"
    assert _figures_drawn(browser) >= 5
    outputs = browser.execute_script(
        "return Array.from(document.querySelectorAll('.jp-OutputArea-output')).map(e => e.innerText).join('\\n')")
    assert "theory-ex-ess: not done yet" in outputs and "Traceback" not in outputs
    browser.save_screenshot(str(root / "student-theory.png"))


def test_on_a_phone_figures_keep_their_size_and_equations_scroll(browser, site):
    """At 390 px a figure is not shrunk until its labels are a few pixels high (it scrolls
    sideways), and a display equation scrolls instead of being clipped."""
    browser.set_window_size(390, 900)
    try:
        _open(browser, f"{site}/book/executed/01_theory.html", TYPESET)
        sizes = browser.execute_script(
            "return Array.from(document.querySelectorAll('main figure img'))"
            ".map(i => [i.getBoundingClientRect().width, i.naturalWidth])")
        assert sizes and all(shown >= 0.95 * natural for shown, natural in sizes), sizes
        _open(browser, f"{site}/book/intro.html", TYPESET)  # the chapters' math is inline
        overflow = browser.execute_script(
            "return Array.from(document.querySelectorAll('mjx-container[display=\"true\"]'))"
            ".map(e => getComputedStyle(e).overflowX)")
        assert overflow and set(overflow) == {"auto"}, overflow
    finally:
        browser.set_window_size(1400, 1600)
