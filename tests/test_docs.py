"""The documentation site: it builds with ``mkdocs build --strict``, its API reference lists every public name,
its model facts match the models, and a headless Chromium renders it."""

from __future__ import annotations

import html
import importlib
import importlib.util
import json
import os
import pkgutil
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import encdec

pytestmark = pytest.mark.slow  # part of make test; make check leaves it out

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
CONFIG = ROOT / "mkdocs.yml"

pytest.importorskip("mkdocs", reason="the docs extra is not installed (pip install -e '.[docs]')")
pytest.importorskip("mkdocstrings", reason="the docs extra is not installed (pip install -e '.[docs]')")


def _hook_module():
    spec = importlib.util.spec_from_file_location("encdec_docs_hook", DOCS / "_hooks" / "encdec_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _newest_source() -> float:
    files = [CONFIG, *DOCS.rglob("*"), *(ROOT / "encdec").rglob("*.py")]
    return max(f.stat().st_mtime for f in files if f.is_file())


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The built site: ``site/`` when ``make docs`` built it after the last change, else a fresh strict build."""
    existing = ROOT / "site"
    if (existing / "index.html").is_file() and (existing / "index.html").stat().st_mtime > _newest_source():
        return existing
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(CONFIG), "-d", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stdout}\n{done.stderr}"
    return out


def _page(site: Path, md: str) -> str:
    path = site / (md[: -len(".md")] + "/index.html" if not md.endswith("index.md") else md[: -len("md")] + "html")
    return path.read_text(encoding="utf-8")


def _table_names(page_html: str) -> set:
    """Names in the first cell of every table row (``<td><a ...><code>name</code></a></td>``)."""
    cells = re.findall(r"<tr>\s*<td[^>]*>(.*?)</td>", page_html, flags=re.S)
    return {html.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in cells}


def test_api_reference_lists_every_public_name(site):
    hook = _hook_module()
    listed = {}
    for page, modules in hook.API_PAGES.items():
        names = _table_names(_page(site, page))
        for module_name in modules:
            listed[module_name] = names
    missing = []
    for module_name, names in listed.items():
        module = importlib.import_module(module_name)
        missing += [f"{module_name}.{n}" for n in module.__all__ if not n.startswith("__") and n not in names]
    assert not missing, f"public names missing from the API tables: {missing}"


def test_every_public_module_is_documented(site):
    hook = _hook_module()
    documented = {m for modules in hook.API_PAGES.values() for m in modules}
    all_names = set().union(*(set(importlib.import_module(m).__all__) for m in documented))
    undocumented = []
    for info in pkgutil.walk_packages(encdec.__path__, "encdec."):
        if any(part.startswith("_") for part in info.name.split(".")) or info.name in documented:
            continue
        module = importlib.import_module(info.name)
        undocumented += [f"{info.name}.{n}" for n in getattr(module, "__all__", []) if n not in all_names]
    assert not undocumented, f"public names of modules without an API page: {undocumented}"


def test_api_objects_are_rendered_with_docstrings(site):
    page = _page(site, "api/metrics.md")
    assert 'id="encdec.metrics.SegmentationMetrics"' in page
    assert "Examples:" in page or "Examples" in page
    assert "language-pycon" in page or "highlight" in page  # doctests rendered as code, not prose


def test_model_table_matches_the_models():
    rows = re.findall(r"^\| \[`(\w+)`\]\(\w+\.md\) \|.*?\| ([\d,]+) \|", (DOCS / "models" / "index.md").read_text(),
                      flags=re.M)
    assert {name for name, _ in rows} == set(encdec.list_models())
    for name, count in rows:
        with torch.device("meta"):
            model = encdec.create_model(name)
        assert int(count.replace(",", "")) == sum(p.numel() for p in model.parameters()), name


def test_model_pages_carry_generated_facts(site):
    for name in encdec.list_models():
        text = (DOCS / "models" / f"{name}.md").read_text()
        assert f"<!-- model-facts {name} -->" in text, name
    page = _page(site, "models/unet.md")
    assert "31,392,086" in page and "UNet_best_model.pth" in page and "GFLOPs" in page


def test_nav_covers_every_page():
    nav = CONFIG.read_text()
    pages = {str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md") if "_hooks" not in p.parts and "dev" not in p.parts}
    missing = [p for p in pages if p not in nav]
    assert not missing, f"pages not in the mkdocs.yml nav: {missing}"


# ---------------------------------------------------------------------------------------------- Chromium

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
CHROMIUM = next((shutil.which(n) for n in CHROMIUM_NAMES if shutil.which(n)), None)

#: Every test that drives the browser carries this mark: without Chromium they are skipped, never failed
#: (``tests/test_docs_without_chromium.py`` runs them with Chromium hidden from PATH to prove it).
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="Chromium is not installed (Debian: apt-get install chromium); the rendering check of the docs site "
           "is skipped",
)
browser = pytest.mark.browser


def _dump_dom(url: str, profile: Path) -> str:
    done = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}", "--dump-dom", url],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_api_summaries_hold_no_escaped_html(site):
    from_hook = _hook_module()
    for page in from_hook.API_PAGES:
        text = _page(site, page)
        for cell in re.findall(r"<td[^>]*>(.*?)</td>", text, flags=re.S):  # HTML tags or entities shown as text
            assert not re.search(r"&lt;/?(code|a|em|strong|span)\b|&amp;#\d+;|&amp;(lt|gt|amp);", cell), (page, cell)
    metrics = _page(site, "api/metrics.md")
    assert re.search(r"<code>[^<]*\|[^<]*</code>", metrics)  # the Dice formula's pipes, inside a code span


def test_wide_code_blocks_and_tables_scroll_in_their_box():
    css = (DOCS / "stylesheets" / "extra.css").read_text()
    rules = dict((selectors.strip(), body) for selectors, body in re.findall(r"([^{}]+)\{([^}]*)\}", css))
    for selector in (".md-typeset pre", ".md-typeset table:not([class])"):
        bodies = [body for selectors, body in rules.items()
                  if selector in [s.strip() for s in re.sub(r"/\*.*?\*/", "", selectors, flags=re.S).split(",")]]
        assert any("overflow-x: auto" in body for body in bodies), selector


@browser
@needs_chromium
def test_chromium_renders_home_and_api_pages(site, tmp_path):
    home = _dump_dom((site / "index.html").as_uri(), tmp_path / "profile")
    assert re.search(r"<title>\s*encdec", home)
    assert re.search(r"<h1[^>]*>\s*encdec", home)
    assert "make demo" in re.sub(r"<[^>]+>", "", home)  # the set-up commands, inside a highlighted code block

    api = _dump_dom((site / "api" / "metrics" / "index.html").as_uri(), tmp_path / "profile")
    assert re.search(r"<title>\s*encdec\.metrics", api)
    table = re.search(r"<table>.*?</table>", api, flags=re.S)
    assert table is not None, "the API page shows no table"
    assert "SegmentationMetrics" in table.group(0) and "confusion_matrix" in table.group(0)
    assert 'id="encdec.metrics.SegmentationMetrics"' in api  # the rendered documentation the table links to


def test_no_sphinx_roles_in_the_built_site(site):
    """Docstrings reach the site as Markdown: a ``:func:`x` `` role would show as text (159 before this check)."""
    role = re.compile(r":(?:py:)?(?:func|class|meth|data|mod|attr|exc|obj|const):(?:<code>|`)")
    found = {}
    for page in site.rglob("*.html"):
        hits = role.findall(page.read_text(encoding="utf-8"))
        if hits:
            found[str(page.relative_to(site))] = len(hits)
    assert not found, f"Sphinx roles shown as text: {found}"


#: The width the issue's readers use: a 1366x768 laptop, the most common screen.
LAPTOP_WIDTH = 1366


#: Loads each page into an iframe of the given width and lists its tables wider than their box.
_MEASURE_TABLES = """<!doctype html><html><body><pre id="report"></pre><script>
const pages = PAGES, report = document.getElementById("report");
let left = pages.length;
for (const uri of pages) {
  const frame = document.createElement("iframe");
  frame.width = WIDTH; frame.height = 900; frame.src = uri;
  frame.onload = () => {
    const wide = [];
    frame.contentDocument.querySelectorAll(".md-content table").forEach((table, i) => {
      const box = table.closest(".md-typeset__scrollwrap") || table;  // Material wraps tables in a scroll box
      if (box.scrollWidth > box.clientWidth + 1)
        wide.push(`table ${i + 1}: ${box.scrollWidth} px in a ${box.clientWidth} px box`);
    });
    report.textContent += JSON.stringify([uri, wide]) + "\\n";
    if (--left === 0) document.title = "measured";
  };
  document.body.appendChild(frame);
}
</script></body></html>"""


def _table_overflow_at(width: int, pages, folder: Path) -> dict:
    """``{page: ["table N: W px in a B px box", ...]}`` for the tables wider than their box when ``pages`` are shown
    ``width`` pixels wide (one Chromium run: each page in an iframe of that width, measured once it has loaded)."""
    wrapper = folder / "measure.html"
    pages_js = json.dumps([p.as_uri() for p in pages])
    wrapper.write_text(_MEASURE_TABLES.replace("PAGES", pages_js).replace("WIDTH", str(width)), encoding="utf-8")
    done = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--allow-file-access-from-files",
         f"--user-data-dir={folder / 'profile'}", f"--window-size={width + 40},1000", "--virtual-time-budget=60000",
         "--dump-dom", wrapper.as_uri()],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = html.unescape(re.search(r'<pre id="report">(.*?)</pre>', done.stdout, flags=re.S).group(1))
    measured = dict(json.loads(line) for line in report.splitlines() if line.strip())
    assert len(measured) == len(pages), f"measured {len(measured)} of {len(pages)} pages"
    return {uri: wide for uri, wide in measured.items() if wide}


#: Pages whose result tables are still wider than a laptop screen: Performance's measurement tables, which move to
#: subpages of their own when that page is split into "what to pick" and the measurements. Remove it then.
WIDE_TABLES_LEFT = ("performance/index.html",)


@browser
@needs_chromium
def test_tables_fit_a_1366_px_screen(site, tmp_path):
    pages = sorted(p for p in site.rglob("*.html") if p.name == "index.html" and "assets" not in p.parts)
    assert len(pages) >= 30 and all((site / left).is_file() for left in WIDE_TABLES_LEFT)
    measured = [p for p in pages if p.relative_to(site).as_posix() not in WIDE_TABLES_LEFT]
    wide = _table_overflow_at(LAPTOP_WIDTH, measured, tmp_path)
    assert not wide, f"tables wider than the page at {LAPTOP_WIDTH} px (a reader must scroll them): {wide}"


@browser
@needs_chromium
def test_the_measurement_sees_a_table_wider_than_the_page(site, tmp_path):
    wide = _table_overflow_at(500, [site / "api" / "training" / "index.html"], tmp_path)  # a phone's width
    assert wide and all(re.fullmatch(r"table \d+: \d+ px in a \d+ px box", line) for line in next(iter(wide.values())))


def test_copy_buttons_sit_on_commands_only(site):
    """Material gives every code block a copy button (``content.code.copy``) except ``no-copy`` ones: outputs."""
    assert "content.code.copy" in CONFIG.read_text()
    blocks = re.findall(r'<div class="([^"]*)highlight"><pre>(.*?)</pre>', _page(site, "cli.md"), flags=re.S)
    texts = [(classes, html.unescape(re.sub(r"<[^>]+>", "", code)).strip()) for classes, code in blocks]
    commands = [t for c, t in texts if "no-copy" not in c]
    outputs = [t for c, t in texts if "no-copy" in c]
    assert len(outputs) >= 5 and all(t.startswith("encdec ") for t in commands), commands
    assert not any(t.startswith("encdec ") and "error:" not in t and "usage:" not in t for t in outputs), outputs


def test_long_signatures_are_formatted_one_parameter_a_line(site):
    """mkdocstrings formats signatures with ruff or black, when one is installed: the docs extra installs ruff."""
    docs_extra = re.search(r"^docs = \[(.*?)\]\s*(?:#[^\n]*)?\n", (ROOT / "pyproject.toml").read_text(),
                           flags=re.M | re.S).group(1)
    assert re.search(r'"(ruff|black)\b', docs_extra), docs_extra
    signatures = [html.unescape(re.sub(r"<[^>]+>", "", s)) for s in re.findall(
        r'class="doc-signature highlight">(.*?)</div>', _page(site, "api/training.md"), flags=re.S)]
    fit = next(s for s in signatures if s.startswith("fit("))
    lines = fit.strip().splitlines()
    assert lines[0] == "fit(" and lines[-1].startswith(") ->"), fit
    assert "    train_loader: DataLoader," in lines and max(map(len, lines)) <= 90, fit
