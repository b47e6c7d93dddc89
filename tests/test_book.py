"""The book: every chapter executes under papermill in the smoke profile, the HTML builds and holds what
the chapters promise, sources carry no outputs, and a failing chapter is reported by name and cell."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest

from rawtag import book

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
STANDARD = {"profile", "dataset", "data_root", "runs_root", "device"}


def glued(notebook: Path) -> dict:
    """Values a chapter glued for its prose (myst-nb stores them as papermill records)."""
    values = {}
    for cell in nbformat.read(notebook, as_version=4).cells:
        for out in cell.get("outputs", []):
            name = out.get("metadata", {}).get("scrapbook", {}).get("name")
            if name:
                values[name] = out["data"]["application/papermill.record/text/plain"]
    return values


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_sources_are_clean_and_parameterized(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), "commit notebooks without outputs"
    tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged `parameters`"
    names = set(re.findall(r"^(\w+)\s*=", tagged[0].source, flags=re.M))
    assert STANDARD <= names, f"parameters cell lacks {STANDARD - names}"
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "## Exercises" in text and "## Summary" in text
    assert "★" in text and "*Expected:*" in text, "exercises are graded and state their expected answers"
    solutions = [c for c in code if "hide-cell" in c.metadata.get("tags", []) and "exercises" in c.source]
    assert solutions, "a collapsed cell shows the solutions, computed by rawtag.exercises"


def test_install_cells_and_colab_buttons_follow_one_repository_setting(tmp_path):
    url = book.repository(ROOT)
    for path in CHAPTERS:
        installs = [c.source for c in nbformat.read(path, as_version=4).cells
                    if c.cell_type == "code" and "%pip install" in c.source]
        assert installs and all(f"git+{url}" in source for source in installs), f"{path.name} installs from {url}"
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks")
    shutil.copy2(ROOT / "_config.yml", tmp_path / "_config.yml")
    fork = "https://github.com/someone/rawtag-fork"
    assert len(book.publish(fork, tmp_path)) == len(CHAPTERS) + 1
    assert book.repository(tmp_path) == fork
    for path in sorted((tmp_path / "notebooks").glob("*.ipynb")):
        assert f"git+{fork}" in path.read_text() and url not in path.read_text()
    assert book.publish(fork, tmp_path) == [], "publishing the same URL again changes nothing"


def test_chapter_list_matches_toc():
    toc = (ROOT / "_toc.yml").read_text()
    for path in CHAPTERS:
        assert f"notebooks/{path.stem}" in toc


@pytest.fixture(scope="module")
def smoke_book(tmp_path_factory, monkeypatch_module):
    root = tmp_path_factory.mktemp("book")
    monkeypatch_module.chdir(ROOT)
    times = book.run("smoke", out=root / "executed", data_root=str(root / "data"), runs_root=str(root / "runs"),
                     log=lambda line: None)
    index = book.build(root / "executed", out=root, log=lambda line: None)
    return root, times, index


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


@pytest.mark.slow
def test_every_chapter_runs_in_the_smoke_profile(smoke_book):
    root, times, _ = smoke_book
    assert list(times) == [p.stem for p in CHAPTERS]
    executed = root / "executed"
    for path in CHAPTERS:
        nb = nbformat.read(executed / path.name, as_version=4)
        errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
        assert not errors
    sweep = sorted(p.name for p in (executed / "sweep").glob("*.ipynb"))
    assert sweep == [f"03_base_cnn_{i}_L{a}_S{b}.ipynb" for i, (a, b)
                     in enumerate([(1024, 1024), (1024, 512), (512, 512), (512, 256), (256, 256)], start=1)]


@pytest.mark.slow
def test_glued_numbers_are_the_runs_numbers(smoke_book):
    root, _, _ = smoke_book
    ch03 = glued(root / "executed" / "03_base_cnn.ipynb")
    results = json.loads((root / "runs" / "synthetic-smoke" / "base" / "results.json").read_text())
    assert results["test"] is None, "the paper's split has no test split"
    assert float(ch03["valid_best"].strip("'")) == pytest.approx(results["valid"]["roc_auc"], abs=5e-5)
    assert float(ch03["valid_last"].strip("'")) == pytest.approx(results["valid_last_epoch"]["roc_auc"], abs=5e-5)
    assert ch03["data_label"].strip("'") == "synthetic set (96 clips on TimGM6mb, paper split), smoke profile"
    ch06 = glued(root / "executed" / "06_improvements.ipynb")
    improved = json.loads((root / "runs" / "synthetic-smoke" / "improved" / "results.json").read_text())
    assert float(ch06["improved_best"].strip("'")) == pytest.approx(improved["valid"]["roc_auc"], abs=5e-5)
    manifest = json.loads((root / "data" / "synthetic-96" / "prepared-paper" / "manifest.json").read_text())
    assert manifest["params"]["scheme"] == "paper"
    ch07 = json.loads((root / "data" / "synthetic-96" / "prepared-won" / "manifest.json").read_text())
    assert ch07["params"]["scheme"] == "won", "chapter 07 uses the later literature's split"


@pytest.mark.slow
def test_the_built_book_holds_the_table_players_and_figures(smoke_book):
    _, _, index = smoke_book
    html = index.parent
    assert index.exists()
    pages = {p.stem: p.read_text() for p in (html / "notebooks").glob("*.html")}
    assert set(pages) == {p.stem for p in CHAPTERS}
    sweep = pages["04_sweep"]
    assert "ROC-AUC (MagnaTagATune, Table 1)" in sweep
    assert "0.7931" in sweep and "synthetic set (96 clips on TimGM6mb, paper split), smoke profile" in sweep
    assert "last epoch" in sweep and "best epoch" in sweep, "both validation numbers beside the paper's"
    assert 'href="sweep/03_base_cnn_4_L512_S256.html"' in sweep, "the table links each executed copy"
    assert (html / "notebooks" / "sweep" / "03_base_cnn_4_L512_S256.html").exists()
    for name in ("01_data", "05_qualitative", "07_beyond"):
        assert "<audio" in pages[name], f"{name} has audio players"
    for name, page in pages.items():
        titles = re.findall(r'<h1>[^<]*<a class="headerlink"', page)  # the content's, not the theme's header
        assert len(titles) == 1, f"{name} has one title; its prose renders as paragraphs, not headings"
        assert "<img" in page, f"{name} has figures"
        assert "{glue:" not in page, f"{name} has an unresolved glue role"
    assert "colab.research.google.com/github/rawtag/rawtag/blob/main/notebooks/03_base_cnn.ipynb" in pages[
        "03_base_cnn"], "Colab launch button"


def test_a_failing_chapter_is_named_with_its_cell(tmp_path, monkeypatch):
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: intro\n")
    (tmp_path / "notebooks").mkdir()
    params = nbformat.v4.new_code_cell('profile = "quick"\ndataset = None\ndata_root = "data"\n'
                                       'runs_root = "runs"\ndevice = "auto"')
    params.metadata["tags"] = ["parameters"]
    ok = nbformat.v4.new_notebook(cells=[params, nbformat.v4.new_code_cell("x = 1")])
    bad = nbformat.v4.new_notebook(cells=[params, nbformat.v4.new_code_cell("y = 2"),
                                          nbformat.v4.new_code_cell("raise ValueError('no such clip')")])
    for nb in (ok, bad):
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(ok, tmp_path / "notebooks" / "01_fine.ipynb")
    nbformat.write(bad, tmp_path / "notebooks" / "02_broken.ipynb")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RAWTAG_PROJECT", raising=False)
    lines = []
    failed = r"chapter 02_broken failed in cell In \[\d+\] \(.raise ValueError.*ValueError: no such clip"
    with pytest.raises(book.BookError, match=failed):
        book.run("smoke", out=tmp_path / "executed", log=lines.append)
    assert (tmp_path / "executed" / "01_fine.ipynb").exists()
    assert (tmp_path / "executed" / "02_broken.failed.ipynb").exists()
    assert not (tmp_path / "executed" / "02_broken.ipynb").exists(), "a failed chapter never looks finished"
    assert lines and lines[0].startswith("01_fine")
    with pytest.raises(book.BookError, match="not executed yet: 02_broken.ipynb"):
        book.build(tmp_path / "executed", out=tmp_path)
    with pytest.raises(book.BookError, match="no chapter '09'"):
        book.run("smoke", only=["09"], out=tmp_path / "executed")


def test_variants_run_side_by_side_each_with_its_parameters_and_title(tmp_path):
    """Chapter 04 executes chapter 03 once per setting, two at a time: each copy holds its own parameter's
    result and title, returned in the order asked, and a failing copy is named."""
    params = nbformat.v4.new_code_cell("stride = 1")
    params.metadata["tags"] = ["parameters"]
    chapter = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# 3. A chapter"), params,
                                              nbformat.v4.new_code_cell("assert stride > 0\nprint(stride * 10)")])
    chapter.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(chapter, tmp_path / "03_chapter.ipynb")
    variants = [(tmp_path / "sweep" / f"03_chapter_{s}.ipynb", f"Sweep run: stride {s}", {"stride": s})
                for s in (4, 2)]
    copies = book.run_variants(tmp_path / "03_chapter.ipynb", variants, processes=2)
    assert copies == [out for out, _, _ in variants]
    for (_, title, parameters), copy in zip(variants, copies, strict=True):
        nb = nbformat.read(copy, as_version=4)
        assert nb.cells[0].source.startswith(f"# {title}")
        assert nb.cells[1].source == "## 3. A chapter", "the chapter's own heading is demoted"
        printed = [o["text"] for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                   if o.get("name") == "stdout"]
        assert printed == [f"{parameters['stride'] * 10}\n"]
    with pytest.raises(Exception, match="AssertionError"):
        book.run_variants(tmp_path / "03_chapter.ipynb", [(tmp_path / "bad.ipynb", "bad", {"stride": 0}),
                                                          (tmp_path / "good.ipynb", "good", {"stride": 5})])
    assert (tmp_path / "bad.failed.ipynb").exists() and not (tmp_path / "bad.ipynb").exists()


def test_book_cli_rejects_unknown_profile(capsys):
    from rawtag.__main__ import main

    with pytest.raises(SystemExit):
        main(["book", "run", "--profile", "huge"])
    assert "invalid choice" in capsys.readouterr().err


# ---- the built book, read as a reader would ------------------------------------------------------------
# Each check returns its problems as lines (an empty list when the book is clean); the checks are tried on
# a small hand-made book with one flaw each below, so each is known to be able to fail.

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
DATA_URI = re.compile(r"data:[\w/+.-]+;base64,[A-Za-z0-9+/=\s]+")
UNRENDERED_DOLLARS = re.compile(r"\$[^$\s][^$]*\\[A-Za-z]+[^$]*\$")  # `$x_{\min}$` left as text


class ReadPage(HTMLParser):
    """One HTML page as a reader meets it: its ids, links, images and scripts, its text with where each
    piece stands (in a cell's output, in maths, in code, in a script)."""

    def __init__(self, path: Path):
        super().__init__(convert_charrefs=True)
        self.path, self.ids, self.refs, self.scripts, self.texts = path, set(), [], [], []
        self.stack: list[tuple[str, str]] = []
        self.feed(path.read_text(errors="replace"))

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("id", "name") if tag != "meta" else ("id",):
            if attrs.get(key):
                self.ids.add(attrs[key])
        for key in ("href", "src"):
            if attrs.get(key) and not (tag == "link" and "preconnect" in (attrs.get("rel") or "")):
                self.refs.append((tag, key, attrs[key]))
        if tag == "script":
            self.scripts.append(attrs.get("src") or "")
        if tag not in VOID:
            self.stack.append((tag, attrs.get("class") or ""))

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.stack.pop()

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                break

    def handle_data(self, data):
        if data.strip():
            tags = {t for t, _ in self.stack}
            classes = " ".join(c for _, c in self.stack).split()
            self.texts.append((data, {
                "script": bool(tags & {"script", "style"}),
                "output": "cell_output" in classes,
                "math": "math" in classes,
                "code": bool(tags & {"code", "pre"}) or "highlight" in " ".join(classes)}))

    def text(self, **where) -> str:
        return "\n".join(t for t, at in self.texts if all(at[k] == v for k, v in where.items()))


def book_pages(html: Path) -> list[Path]:
    """Every page a reader can open: the prose, the chapters, the sweep's copies, the index and search."""
    return sorted(p for p in html.rglob("*.html") if not {"_static", "_sources", "_images"} & set(p.parts))


def chapter_pages(html: Path) -> list[Path]:
    return sorted((html / "notebooks").rglob("*.html"))


def machine_path_problems(html: Path, forbidden: list[str]) -> list[str]:
    """Paths of the building machine anywhere in a page or in a downloadable notebook (`_sources`)."""
    problems = []
    for path in book_pages(html) + sorted((html / "_sources").rglob("*.ipynb")):
        if path.suffix == ".ipynb":
            nb = json.loads(path.read_text())
            cells = [c for c in nb["cells"]]
            text = json.dumps(nb["metadata"]) + "".join(
                "".join(c["source"]) + "".join(
                    "".join(o.get("text", "")) + json.dumps(o.get("evalue", "")) + json.dumps(o.get("traceback", []))
                    + "".join("".join(v) for m, v in o.get("data", {}).items() if m.startswith("text/"))
                    for o in c.get("outputs", [])) for c in cells)
        else:
            text = path.read_text(errors="replace")
        text = DATA_URI.sub("data:", text)
        for word in forbidden:
            at = text.find(word)
            if at >= 0:
                problems.append(f"{path.relative_to(html)}: {word!r} in ...{text[max(0, at - 60):at + 80]!r}...")
    return problems


def output_noise_problems(html: Path) -> list[str]:
    """Warnings, tracebacks, kernel log lines and papermill's or the install cell in what the pages show."""
    problems = []
    for path in book_pages(html):
        page = ReadPage(path)
        shown = page.text(output=True, script=False)
        for word in ("WARNING", "Traceback", "UserWarning", "Warning: ", "[IPKernelApp]"):
            if word in shown:
                at = shown.find(word)
                context = shown[max(0, at - 80):at + 120]
                problems.append(f"{path.relative_to(html)}: {word!r} in an output: ...{context!r}")
        raw = path.read_text(errors="replace")
        for marker in ("tag_injected-parameters", "tag_remove-cell", "%pip install"):
            if marker in raw:
                problems.append(f"{path.relative_to(html)}: a cell the book hides is shown ({marker})")
    return problems


def maths_problems(html: Path) -> list[str]:
    """Maths a reader would see raw: MathJax from a CDN (or missing) on a page with maths, `\\(` outside
    the maths MathJax typesets, or dollar maths that was never parsed."""
    problems = []
    for path in book_pages(html):
        page, name = ReadPage(path), path.relative_to(html)
        prose = page.text(script=False, math=False, code=False)
        for raw in ("\\(", "\\["):
            if raw in prose:
                at = prose.find(raw)
                problems.append(f"{name}: maths left as text: ...{prose[max(0, at - 40):at + 60]!r}")
        if UNRENDERED_DOLLARS.search(prose):
            problems.append(f"{name}: dollar maths left as text: {UNRENDERED_DOLLARS.search(prose).group(0)!r}")
        mathjax = [s for s in page.scripts if "mathjax" in s.lower()]
        if page.text(math=True, script=False):
            if not mathjax:
                problems.append(f"{name}: has maths but loads no MathJax")
        for src in mathjax:
            if "://" in src or src.startswith("//"):
                problems.append(f"{name}: MathJax comes from the network ({src}); the book must render offline")
            elif not (path.parent / src.split("?")[0]).exists():
                problems.append(f"{name}: MathJax script {src} is not in the built book")
    return problems


def link_problems(html: Path) -> list[str]:
    """Links, images, scripts and styles of the book that lead nowhere: a local href or src whose file is
    missing, or whose #anchor is no id on the target page. Links to the web are not followed."""
    problems, ids = [], {}
    for path in book_pages(html):
        page = ReadPage(path)
        for tag, attr, ref in page.refs:
            if re.match(r"^(?:[a-z][a-z0-9+.-]*:|//)", ref, re.I) or ref in ("#", ""):
                continue  # http(s), mailto, data:, javascript: ... and the theme's empty toggles
            target, _, anchor = ref.partition("#")
            target = target.split("?")[0]
            file = (path.parent / target).resolve() if target else path
            if file.is_dir():
                file = file / "index.html"
            where = f"{path.relative_to(html)}: <{tag} {attr}={ref!r}>"
            if not file.exists():
                problems.append(f"{where}: no file {file}")
            elif anchor and file.suffix == ".html":
                if file not in ids:
                    ids[file] = ReadPage(file).ids
                if anchor not in ids[file]:
                    problems.append(f"{where}: no id {anchor!r} on {file.name}")
    return problems


def browser_problems(page: Path, chromium: str) -> list[str]:
    """Load `page` in headless Chromium (no network needed): JavaScript errors it logs, and maths that is
    still raw TeX once MathJax has run."""
    done = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                           "--enable-logging=stderr", "--v=0", "--virtual-time-budget=10000",
                           "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    problems = [f"{page.name}: {line.strip()}" for line in done.stderr.splitlines()
                if "Uncaught" in line or ("CONSOLE" in line and re.search(r"\berror\b", line, re.I))]
    dom = done.stdout
    if 'class="math' in page.read_text(errors="replace"):
        if "<mjx-container" not in dom:
            problems.append(f"{page.name}: MathJax did not typeset the maths")
        visible = re.sub(r"<(script|style)\b.*?</\1>", "", dom, flags=re.S)
        if "\\(" in re.sub(r"<[^>]+>", "", visible):
            problems.append(f"{page.name}: raw \\( ... \\) maths left after MathJax ran")
    return problems


INTERNAL = re.compile(r"(?<![\w/.-])(?:shared|tests)/|/work/")  # the project's own folders, a build machine's root
LONG_FLOAT = re.compile(r"\d\.\d{8,}")  # 5.960464477539063e-08: a float printed with repr, not formatted
RAW_MARKUP = re.compile(r"`|\*\*|\{glue:")  # Markdown that reached the page as text (from glue, mostly)
TABLE = re.compile(r"<table\b.*?</table>", re.S)
MAX_COLUMNS, MAX_UNBROKEN = 7, 40  # more columns, or a longer word in a cell, and a table runs off the page


def page_fault_problems(html: Path) -> list[str]:
    """What a reader should not meet in the text of a page: the project's internal folders or a machine's
    paths, floats printed to 16 digits, Markdown left as text (backticks, bold marks, glue roles) outside
    code, and tables too wide for the page (too many columns, or a cell with a long unbreakable word)."""
    problems = []
    for path in book_pages(html):
        page, name = ReadPage(path), path.relative_to(html)
        shown = page.text(script=False)
        prose = page.text(script=False, code=False, math=False)
        for label, pattern, text in (("internal folder or machine path", INTERNAL, shown),
                                     ("long float", LONG_FLOAT, shown), ("raw Markdown", RAW_MARKUP, prose)):
            for hit in pattern.finditer(text):
                problems.append(f"{name}: {label}: ...{text[max(0, hit.start() - 50):hit.end() + 50]!r}")
        for table in TABLE.findall(path.read_text(errors="replace")):
            header = re.search(r"<tr\b.*?</tr>", table, re.S)
            columns = len(re.findall(r"<t[hd]\b", header.group(0))) if header else 0
            if columns > MAX_COLUMNS:
                problems.append(f"{name}: a table of {columns} columns (at most {MAX_COLUMNS} fit the page)")
            text = re.sub(r"<[^>]+>", " ", table)
            for word in text.split():
                if len(word) > MAX_UNBROKEN and not re.search(r"[-/]", word[:MAX_UNBROKEN]):
                    problems.append(f"{name}: a table cell holds {word[:60]!r}, too long to wrap")
    return problems


def reader_forbidden(extra: list[str] = ()) -> list[str]:
    return [str(ROOT), "/tmp/", "/root/", "/home/", *extra]


@pytest.mark.slow
def test_the_built_book_shows_no_machine_paths(smoke_book):
    root, _, index = smoke_book
    assert machine_path_problems(index.parent, reader_forbidden([str(root)])) == []


@pytest.mark.slow
def test_the_built_book_shows_no_warnings_tracebacks_or_hidden_cells(smoke_book):
    _, _, index = smoke_book
    html = index.parent
    assert output_noise_problems(html) == []
    for path in (html / "notebooks").glob("*.html"):
        assert "tag_parameters" in path.read_text(), f"{path.name}: the parameters cell stays visible"


@pytest.mark.slow
def test_the_built_book_has_no_page_faults(smoke_book):
    _, _, index = smoke_book
    assert page_fault_problems(index.parent) == []


@pytest.mark.slow
def test_the_built_book_renders_maths_offline(smoke_book):
    _, _, index = smoke_book
    html = index.parent
    assert maths_problems(html) == []
    assert (html / "_static" / "mathjax" / "tex-svg.js").exists()
    assert any('class="math' in p.read_text() for p in chapter_pages(html)), "the chapters' maths is there"


@pytest.mark.slow
def test_every_link_and_image_of_the_built_book_resolves(smoke_book):
    _, _, index = smoke_book
    assert link_problems(index.parent) == []


@pytest.mark.slow
def test_chapters_load_in_a_browser_without_errors(smoke_book):
    chromium = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
    if chromium is None:
        pytest.skip("no chromium on this machine (apt-get install chromium) to load the pages")
    _, _, index = smoke_book
    html = index.parent
    problems = []
    for page in chapter_pages(html) + sorted((html / "book").glob("*.html")):
        problems += browser_problems(page, chromium)
    assert problems == []


def fake_book(tmp_path: Path, flaw: str = "") -> Path:
    """A two-page built book, clean unless `flaw` names one thing a reader would trip over."""
    html = tmp_path / "html"
    (html / "notebooks").mkdir(parents=True)
    (html / "_static" / "mathjax").mkdir(parents=True)
    (html / "_static" / "mathjax" / "tex-svg.js").write_text("/* MathJax */")
    (html / "_images").mkdir()
    (html / "_images" / "fig.png").write_bytes(b"png")
    mathjax = {"cdn": "https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js",
               "missing-mathjax": "../_static/mathjax/tex-chtml.js"}.get(flaw, "../_static/mathjax/tex-svg.js")
    output = {"path": f"saved to {ROOT}/runs/base", "tmp": "wrote /tmp/pytest-1/x.json",
              "warning": "/x/train.py:3: UserWarning: one class", "traceback": "Traceback (most recent call last):",
              "kernel": "[IPKernelApp] WARNING | Kernel is running over TCP"}.get(flaw, "saved to runs/base")
    prose = {"raw-maths": "the range \\(x_{\\min}\\) in text", "dollars": "the range $x_{\\min}$ in text"}.get(
        flaw, 'the range <span class="math notranslate nohighlight">\\(x_{\\min}\\)</span>')
    link = {"link": "../book/nowhere.html", "anchor": "../index.html#no-such-section"}.get(flaw, "../index.html#top")
    image = "../_images/gone.png" if flaw == "image" else "../_images/fig.png"
    injected = '<div class="cell tag_injected-parameters">x</div>' if flaw == "injected" else ""
    output = {"long-float": "largest difference: 5.960464477539063e-08"}.get(flaw, output)
    prose += {"internal": " (its text is in the project's shared/seed/ folder)",
              "build-machine": " (git clone /work/main)", "backticks": " (mode `none`)",
              "bold": " **The whole sentence in bold.**", "glue-role": " {glue:text}`valid_best`"}.get(flaw, "")
    cells = {"wide-table": ["x"] * 9, "long-cell": ["american_baroque_dances_and_suites_of_rameau.mp3", "corrupt"]
             }.get(flaw, ["6/norine_braun-now_and_zen-08.mp3", "empty"])
    injected += ("<table><thead><tr>" + "".join(f"<th>h{i}</th>" for i in range(len(cells))) + "</tr></thead>"
                 "<tbody><tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr></tbody></table>")
    (html / "notebooks" / "01_data.html").write_text(f"""<html><head>
<script defer="defer" src="{mathjax}"></script></head><body>
<p>{prose}</p><a href="{link}">home</a><img src="{image}"/>{injected}
<div class="cell docutils container"><div class="cell_output docutils container">
<div class="output stream highlight-myst-ansi notranslate"><pre>{output}</pre></div>
<img src="data:image/png;base64,AAAA/tmp/BBBB"/></div></div></body></html>""")
    (html / "index.html").write_text('<html><body><h1 id="top">rawtag</h1>'
                                     '<a href="notebooks/01_data.html">chapter</a></body></html>')
    return html


@pytest.mark.parametrize("flaw, check", [
    ("path", "paths"), ("tmp", "paths"), ("warning", "noise"), ("traceback", "noise"), ("kernel", "noise"),
    ("injected", "noise"), ("cdn", "maths"), ("missing-mathjax", "maths"), ("raw-maths", "maths"),
    ("dollars", "maths"), ("link", "links"), ("anchor", "links"), ("image", "links"), ("internal", "page"),
    ("build-machine", "page"), ("long-float", "page"), ("backticks", "page"), ("bold", "page"),
    ("glue-role", "page"), ("wide-table", "page"), ("long-cell", "page")])
def test_each_reader_check_finds_its_flaw(tmp_path, flaw, check):
    checks = {"paths": lambda html: machine_path_problems(html, reader_forbidden()),
              "noise": output_noise_problems, "maths": maths_problems, "links": link_problems,
              "page": page_fault_problems}
    clean = fake_book(tmp_path / "clean")
    assert {name: run(clean) for name, run in checks.items()} == {name: [] for name in checks}
    assert checks[check](fake_book(tmp_path / flaw, flaw)), f"the {check} check misses a {flaw} flaw"


# ---- what the runner does to an executed chapter, and the book's number formatting --------------------

def executed_notebook(root: Path):
    """A chapter as papermill leaves it: install cell, parameters, injected parameters, a glue-only cell,
    a training log, machine paths and warnings in its outputs."""
    new = nbformat.v4
    cells = [new.new_code_cell('import importlib.util\n\nif importlib.util.find_spec("rawtag") is None:\n'
                               '    %pip install --quiet "rawtag @ git+https://github.com/rawtag/rawtag"'),
             new.new_code_cell('profile = "quick"\ndata_root = "data"'),
             new.new_code_cell(f'# Parameters\nprofile = "smoke"\ndata_root = "{root}/data"\n'),
             new.new_code_cell('show.glue("a", 1)\n\n# a comment\nshow.glue("b",\n          2)'),
             new.new_code_cell('run = train()'),
             new.new_code_cell('print(data)'),
             new.new_code_cell('plot()')]
    cells[1].metadata["tags"] = ["parameters"]
    cells[2].metadata["tags"] = ["injected-parameters"]
    cells[4].outputs = [new.new_output("stream", name="stdout", text="".join(f"epoch {i}/20\n" for i in range(20)))]
    cells[5].outputs = [
        new.new_output("stream", name="stderr",
                       text="[IPKernelApp] WARNING | Kernel is running over TCP without encryption.\n"
                            f"{root}/rawtag/train.py:316: UserWarning: 15 tag(s) have a single class\n"
                            "  warnings.warn(\n"),
        new.new_output("stream", name="stdout", text=f"PreparedSet('{root}/data/set', 50 tags)\n"),
        new.new_output("execute_result", data={"text/plain": f"PosixPath('{root}/runs/base')"}, execution_count=6)]
    cells[6].outputs = [new.new_output("stream", name="stdout", text="x\n" * 30),
                        new.new_output("display_data", data={"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"}),
                        new.new_output("display_data", data={"text/plain": "epoch 1/20:   0%|          | 0/98",
                                                             book.WIDGET_VIEW: {"model_id": "abc"}})]
    nb = new.new_notebook(cells=cells)
    nb.metadata["papermill"] = {"input_path": f"{root}/notebooks/01_data.ipynb",
                                "parameters": {"data_root": f"{root}/data"}}
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    return nb


def test_tidy_hides_the_machinery_and_keeps_what_readers_need(tmp_path, monkeypatch):
    monkeypatch.setenv("RAWTAG_PROJECT", str(tmp_path))
    nb = executed_notebook(tmp_path)
    notes = book.tidy(nb, book.machine_paths({"data_root": f"{tmp_path}/data"}, tmp_path / "_build" / "executed"))
    tags = [c.metadata.get("tags", []) for c in nb.cells]
    assert "remove-cell" in tags[0], "the install cell"
    assert tags[1] == ["parameters"], "the parameters cell stays visible"
    assert "remove-cell" in tags[2], "papermill's injected parameters"
    assert "remove-cell" in tags[3], "a cell of glue calls only"
    assert tags[4] == ["hide-output"], "a long training log folds away"
    assert "hide-output" not in tags[6], "a long log beside a figure is not folded (it would hide the figure)"
    text = json.dumps(nb)
    assert str(tmp_path) not in text
    assert "PreparedSet('data/set', 50 tags)" in nb.cells[5].outputs[0].text  # stderr emptied and dropped
    assert nb.cells[5].outputs[1].data["text/plain"] == "PosixPath('runs/base')"
    assert 'data_root = "data"' in nb.cells[2].source
    shown = json.dumps(nb.cells)
    assert "IPKernelApp" not in shown and "UserWarning" not in shown
    assert any("UserWarning: 15 tag(s)" in n for n in notes) and any("path of this machine" in n for n in notes)
    assert nb.metadata["rawtag"]["tidy"] == notes
    assert "widgets" not in nb.metadata, "no widget manager from a CDN in the book"
    assert len(nb.cells[6].outputs) == 2 and "0%|" not in json.dumps(nb.cells[6].outputs), "progress bars go"
    assert book.relative_paths(f"see {tmp_path}.", [(str(tmp_path), "")]) == "see .."
    assert book.relative_paths(f"{tmp_path}-old/x", [(str(tmp_path), "")]) == f"{tmp_path}-old/x"


def test_kernels_start_with_transport_encryption_where_available():
    import zmq
    from jupyter_client.manager import KernelManager

    options = book._engine_options()
    if "transport_encryption" in KernelManager.class_trait_names() and zmq.has("curve"):
        assert options["config"]["KernelManager"]["transport_encryption"] == "auto"
    else:
        assert options == {}


@pytest.mark.slow
def test_glued_values_from_removed_cells_reach_the_prose(tmp_path, monkeypatch):
    """myst-nb reads glue from every cell, including those the runner tags `remove-cell`."""
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nchapters:\n  - file: notebooks/01_x\n")
    (tmp_path / "_config.yml").write_text((ROOT / "_config.yml").read_text())
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "intro.md").write_text("# Intro\n\nText.\n")
    (tmp_path / "notebooks").mkdir()
    params = nbformat.v4.new_code_cell('profile = "quick"\ndataset = None\ndata_root = "data"\n'
                                       'runs_root = "runs"\ndevice = "auto"')
    params.metadata["tags"] = ["parameters"]
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# A chapter\n\nThe answer is {glue:text}`answer:.2f` here."), params,
        nbformat.v4.new_code_cell("from rawtag import show"), nbformat.v4.new_code_cell('show.glue("answer", 41.999)')])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "notebooks" / "01_x.ipynb")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RAWTAG_PROJECT", raising=False)
    book.run("smoke", out=tmp_path / "executed", log=lambda line: None)
    executed = nbformat.read(tmp_path / "executed" / "01_x.ipynb", as_version=4)
    assert "remove-cell" in executed.cells[-1].metadata["tags"]
    index = book.build(tmp_path / "executed", out=tmp_path, log=lambda line: None)
    page = (index.parent / "notebooks" / "01_x.html").read_text()
    assert re.search(r"The answer is (<span[^>]*>)?42.00(</span>)? here", page)
    assert "show.glue" not in page


def test_tables_format_each_column_by_what_it_holds():
    from rawtag import show

    md = show.table(["model", "parameters", "seconds per epoch (this machine)", "clips/s", "valid ROC-AUC",
                     "change from previous step", "ratio"],
                    [["a", 12345, 12.3456, 1234.56, 0.7249605943008604, 0.01234, 1 / 3],
                     ["b|c", None, 0.04, 0.3123, float("nan"), -0.5, 2.0]]).data
    lines = md.splitlines()
    assert lines[2] == "| a | 12,345 | 12.3 | 1,235 | 0.7250 | +0.0123 | 0.3333 |"
    assert lines[3] == "| b\\|c | n/a | 0.0 | 0.31 | n/a | -0.5000 | 2.0000 |"
    assert show.table(["tag", "probability"], [["x", 0.123456]], floats=".3f").data.endswith("| x | 0.123 |")
    assert show.table(["s per epoch", "AUC"], [[1.23456, 0.5]], formats={"s per epoch": ".2f"}).data.endswith(
        "| 1.23 | 0.5000 |")


def test_a_runs_results_show_as_a_table_not_json():
    from rawtag import show

    results = {"best_epoch": 3, "epochs": 20, "train_clips": 16963, "final_valid_roc_auc": 0.71234,
               "valid": {"roc_auc": 0.7249605943008604, "pr_auc": 0.31234, "clips": 4392}, "test": None}
    md = show.results_table(results).data
    assert "| best epoch (chosen on validation ROC-AUC) | 3 of 20 |" in md
    assert "| validation ROC-AUC, best epoch | 0.7250 |" in md and "0.72496" not in md
    assert "| validation ROC-AUC, last epoch | 0.7123 |" in md
    assert "| training clips | 16,963 |" in md and "| validation clips | 4,392 |" in md
    assert "n/a (no test split)" in md
    results.update(test={"roc_auc": 0.7, "pr_auc": 0.3, "clips": 10}, valid_last_epoch={"epoch": 20, "roc_auc": 0.7},
                   final_valid_roc_auc=None)
    md = show.results_table(results).data
    assert "| test ROC-AUC, best epoch | 0.7000 |" in md and "| validation ROC-AUC, last epoch (epoch 20) |" in md


def test_the_clip_explorer_always_draws_its_plain_view(monkeypatch):
    import IPython.display
    import numpy as np

    from rawtag import widgets

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda *objs, **kw: shown.extend(objs))

    class Data:
        tags, sample_rate = ["rock", "piano"], 12000
        labels = np.array([[1, 0], [0, 1]])
        clips = np.zeros((2, 349500), dtype=np.int16)
        paths = ["0/a.mp3", "1/b.mp3"]

    widgets.clip_explorer(Data(), [1, 0], seconds=0.1, static=False)
    kinds = [type(o).__name__ for o in shown]
    assert "Audio" in kinds and "Figure" in kinds, kinds


def test_run_variant_starts_a_kernel_again_when_it_died_at_start(tmp_path, monkeypatch):
    from rawtag import book

    calls = []

    def flaky(chapter, out, parameters, kernel, edit=None):
        calls.append(out)
        if len(calls) == 1:
            raise RuntimeError("Kernel died before replying to kernel_info")

    monkeypatch.setattr(book, "_papermill", flaky)
    assert book.run_variant(tmp_path / "c.ipynb", tmp_path / "o.ipynb", "T", {}) == tmp_path / "o.ipynb"
    assert len(calls) == 2
    monkeypatch.setattr(book, "_papermill", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("other")))
    with pytest.raises(RuntimeError, match="other"):
        book.run_variant(tmp_path / "c.ipynb", tmp_path / "o.ipynb", "T", {})
