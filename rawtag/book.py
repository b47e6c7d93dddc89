"""The book: execute the chapters headless with papermill, then build the HTML with Jupyter Book 1.x.

`run` executes `notebooks/NN_*.ipynb` into a build folder (sources stay without outputs), one line per
chapter with its time; a failing chapter stops the run with its name, cell and error, and its executed
copy (with the traceback) is kept as `NAME.failed.ipynb`, never under the chapter's own name. `build`
copies the top-level `_config.yml`, `_toc.yml` and `book/` pages beside the executed chapters and builds
`_build/html`. The README shows both; `rawtag book run|build` calls them. Chapter 04 uses it
from inside the book: `run_variants` executes chapter 03 once per setting of its sweep, side by side.

Every executed copy (chapters and `run_variant` copies alike) is tidied for readers by `tidy`: papermill's
injected parameters, the install cell and glue-only cells are tagged `remove-cell`, long logs
`hide-output`; the machine's paths become project-relative and kernel log lines and Python warnings are
taken out of the outputs (and listed in the notebook's `rawtag.tidy` metadata, and by `run`, so they can
be fixed where they start). Kernels are started with CurveZMQ keys where jupyter_client and ipykernel
can (no "running over TCP without encryption" warning). The module is also a Sphinx extension
(`_config.yml` names it) that serves MathJax from the built book, so maths renders offline.

Chapter: 04_sweep
"""
from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from .workspace import locate, project_root

EXECUTED = "_build/executed"
HIDE_OUTPUT_LINES = 12  # a cell printing more lines than this (training logs) shows them behind a toggle


class BookError(RuntimeError):
    """The book cannot be run or built: a chapter failed (the message names it, its cell and the error),
    or something is missing (the message says what to do).

    Chapter: 04_sweep
    """


def _root() -> Path:
    root = project_root()
    if root is None:
        raise BookError("no _toc.yml here or above: run `rawtag book` from the rawtag checkout")
    return root


def chapters(root: Path | None = None) -> list[Path]:
    """The chapter notebooks, in order (`notebooks/NN_name.ipynb`).

    Chapter: 04_sweep
    """
    return sorted(((root or _root()) / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def select(names: list[str] | None, root: Path | None = None) -> list[Path]:
    """The chapters named by number or name (`03`, `03_base_cnn`); all of them for None.

    Chapter: 04_sweep
    """
    every = chapters(root)
    if not names:
        return every
    chosen = []
    for name in names:
        hits = [c for c in every if c.stem == name or c.stem.split("_")[0] == name]
        if not hits:
            raise BookError(f"no chapter {name!r}; choose from {', '.join(c.stem for c in every)}")
        chosen += hits
    return chosen


INSTALL_URL = re.compile(r'(rawtag @ git\+)([^"\s]+)')  # in each chapter's install cell
CONFIG_URL = re.compile(r"^(repository:\n(?:  .*\n)*?  url: )(\S+)", re.M)


def repository(root: Path | None = None) -> str:
    """The repository the book is published from: `repository.url` in `_config.yml`. It is the one setting
    behind the Colab launch buttons and every chapter's install cell; `publish` changes both.

    Chapter: 01_data
    """
    found = CONFIG_URL.search(((root or _root()) / "_config.yml").read_text())
    if found is None:
        raise BookError("_config.yml has no repository: url: line")
    return found.group(2)


def publish(url: str, root: Path | None = None) -> list[Path]:
    """Point the book at the repository `url` (`rawtag book publish --repository URL`): set
    `repository.url` in `_config.yml` and the URL in every chapter's install cell; returns the files changed.

    Chapter: 01_data
    """
    import nbformat

    root = root or _root()
    if not re.match(r"^https://\S+$", url):
        raise BookError(f"not an https URL: {url!r}")
    changed, config = [], root / "_config.yml"
    text = config.read_text()
    if CONFIG_URL.search(text).group(2) != url:
        config.write_text(CONFIG_URL.sub(lambda m: m.group(1) + url, text, count=1))
        changed.append(config)
    for chapter in chapters(root):
        nb = nbformat.read(chapter, as_version=4)
        cells = [c for c in nb.cells if c.cell_type == "code" and _installs_rawtag(c.source)]
        for cell in cells:
            cell.source = INSTALL_URL.sub(lambda m: m.group(1) + url, cell.source)
        if cells and nbformat.writes(nb) + "\n" != chapter.read_text():
            nbformat.write(nb, chapter)
            changed.append(chapter)
    return changed


def run(profile: str = "quick", only: list[str] | None = None, out: str | os.PathLike = EXECUTED,
        dataset: str | None = None, data_root: str = "data", runs_root: str = "runs", device: str = "auto",
        kernel: str = "python3", log=print) -> dict:
    """Execute chapters with papermill into `out`; returns {chapter: seconds}. Raises BookError naming the
    chapter and cell that failed.

    Chapter: 04_sweep
    """
    from .profiles import profile as check_profile

    check_profile(profile)
    root = _root()
    out = locate(out)
    out.mkdir(parents=True, exist_ok=True)
    params = {"profile": profile, "dataset": dataset, "data_root": str(locate(data_root)),
              "runs_root": str(locate(runs_root)), "device": device}
    chosen = select(only, root)
    # for the kernels: chapters run in `out` find the project (chapter 04 needs 03), and progress bars stay
    # off (a bar redrawn in a headless run is noise in the page; `fit` still prints one line per epoch)
    kernel_env = {"RAWTAG_PROJECT": str(root), "TQDM_DISABLE": "1"}
    previous = {k: os.environ.get(k) for k in kernel_env}
    os.environ.update(kernel_env)
    try:
        times = _execute(chosen, out, params, kernel, log)
    finally:
        for k, v in previous.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    log(f"{'total':<24} {sum(times.values()):7.1f} s   ({profile} profile)")
    return times


def _papermill(chapter: Path, target: Path, parameters: dict, kernel: str, edit=None) -> list[str]:
    """Execute `chapter` into `target` with papermill, in `target`'s folder. The copy is written as
    NAME.running.ipynb, tidied for the book (`tidy`; its notes are returned), given to `edit(notebook)` if
    any, and renamed over `target` when done: until then a previous `target` stays as it was, whatever
    happens (a failure, Ctrl-C, a kill). A failed run is kept as NAME.failed.ipynb, untouched, with its
    traceback, and the PapermillExecutionError re-raised."""
    import nbformat
    import papermill
    from papermill.exceptions import PapermillExecutionError

    target.parent.mkdir(parents=True, exist_ok=True)
    running, failed = (target.with_name(f"{target.stem}.{state}.ipynb") for state in ("running", "failed"))
    failed.unlink(missing_ok=True)  # an earlier failure's copy
    try:
        papermill.execute_notebook(str(chapter), str(running), parameters=parameters, kernel_name=kernel,
                                   cwd=str(target.parent), progress_bar=False, log_output=False,
                                   **_engine_options())
    except PapermillExecutionError:
        os.replace(running, failed)
        raise
    except BaseException:
        running.unlink(missing_ok=True)
        raise
    nb = nbformat.read(running, as_version=4)
    notes = tidy(nb, machine_paths(parameters, target.parent))
    if edit is not None:
        edit(nb)
    nbformat.write(nb, running)
    os.replace(running, target)
    return notes


def _engine_options() -> dict:
    """Options for papermill's engine (nbclient): start kernels with CurveZMQ keys provisioned by the
    kernel manager where jupyter_client (8.10+) and pyzmq support it and the kernelspec declares it
    (ipykernel 7), which also stops ipykernel 7 from warning that it "is running over TCP without
    encryption" (a warning that reaches chapter outputs when a chapter runs another one, as 04 does)."""
    try:
        import zmq
        from jupyter_client.manager import KernelManager
        from traitlets.config import Config
    except ImportError:
        return {}
    if "transport_encryption" not in KernelManager.class_trait_names() or not zmq.has("curve"):
        return {}
    return {"config": Config({"KernelManager": {"transport_encryption": "auto"}})}


# ---- tidying executed notebooks for readers ---------------------------------------------------------

_KERNEL_LOG = re.compile(r"^\[(?:IPKernelApp|KernelApp|ZMQTerminalIPythonApp)\] [A-Z]+ \|.*(?:\n|$)", re.M)
_WARNING_LINE = re.compile(r"^.*:\d+: (?:[A-Z]\w*)?Warning: ")
_CELL_FILE = re.compile(r"/tmp/ipykernel_\d+/\d+\.py")
_TEXT_MIMES = ("text/plain", "text/html", "text/markdown", "text/latex")


def machine_paths(parameters: dict, cwd: str | os.PathLike) -> list[tuple[str, str]]:
    """(absolute path, what a reader sees instead) for the paths of this machine a chapter may print: the
    project root becomes relative (`runs/...`), folders outside it given as parameters (data_root,
    runs_root) or as the working folder become their own name, and the home folder `~`. Longest first.

    Chapter: 04_sweep
    """
    root = project_root()
    places = [value for key, value in parameters.items()
              if key.endswith("_root") and isinstance(value, str) and os.path.isabs(value)]
    pairs = {}
    for place in (*places, str(cwd)):
        for path in {Path(place), Path(place).resolve()}:
            if root is not None and (path == root or root in path.parents):
                continue  # the project root's rule covers it
            pairs[str(path)] = path.name
    if root is not None:
        for path in {root, root.resolve()}:
            pairs[str(path)] = ""
    home = Path.home()
    if str(home) not in ("/", ""):
        pairs.setdefault(str(home), "~")
    return sorted(((p, label) for p, label in pairs.items() if p not in ("/", "")), key=lambda x: -len(x[0]))


def relative_paths(text: str, pairs: list[tuple[str, str]]) -> str:
    """`text` with each absolute path of `pairs` replaced by its reader's form (see `machine_paths`).

    Chapter: 04_sweep
    """
    for path, label in pairs:
        if path not in text:
            continue
        escaped = re.escape(path)
        text = re.sub(escaped + r"/", (label + "/") if label else "", text)
        text = re.sub(escaped + r"(?![\w-]|\.\w)", label or ".", text)
    return _CELL_FILE.sub("<cell>", text)


def _strip_warnings(text: str) -> tuple[str, list[str]]:
    """`text` (a stderr stream) without kernel log lines and Python warnings (`file:line: XWarning: message`
    and the indented source line under it); returns the text and the warnings' first lines."""
    found = [m.group(0).strip() for m in _KERNEL_LOG.finditer(text)]
    text = _KERNEL_LOG.sub("", text)
    kept, skipping = [], False
    for line in text.splitlines(keepends=True):
        if _WARNING_LINE.match(line):
            found.append(line.strip())
            skipping = True
            continue
        if skipping and line.startswith(("  ", "\t")):
            continue
        skipping = False
        kept.append(line)
    return "".join(kept), found


def _installs_rawtag(source: str) -> bool:
    return "rawtag" in source and re.search(r"^\s*[%!]\s*pip\s+install\b", source, re.M) is not None


def _glue_only(source: str) -> bool:
    """Whether every statement of `source` is a `show.glue(...)` (or `glue(...)`) call."""
    try:
        body = ast.parse(source).body
    except SyntaxError:
        return False

    def is_glue(node):
        func = node.value.func if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call) else None
        return (isinstance(func, ast.Attribute) and func.attr == "glue") or (
            isinstance(func, ast.Name) and func.id == "glue")

    return bool(body) and all(is_glue(node) for node in body)


def _tag(cell, tag: str) -> None:
    tags = cell.metadata.setdefault("tags", [])
    if tag not in tags:
        tags.append(tag)


def _relative_everywhere(value, pairs):
    if isinstance(value, str):
        return relative_paths(value, pairs)
    if isinstance(value, list):
        return [_relative_everywhere(v, pairs) for v in value]
    if isinstance(value, dict):
        return type(value)((k, _relative_everywhere(v, pairs)) for k, v in value.items())
    return value


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def tidy(nb, pairs: list[tuple[str, str]] = ()) -> list[str]:
    """Make an executed notebook read well in the book, in place; returns notes on what it took out.

    - papermill's `injected-parameters` cell, the cell that `%pip install`s rawtag, and cells holding only
      `show.glue(...)` calls are tagged `remove-cell` (myst-nb still reads the glued values);
    - a cell printing more than HIDE_OUTPUT_LINES lines (training logs) is tagged `hide-output`, unless it
      also shows figures or tables, which would then be hidden too;
    - the machine's paths (`pairs`, see `machine_paths`) become what a reader can use, in outputs, in the
      injected cell and in papermill's metadata;
    - kernel log lines and Python warnings are taken out of stderr; the notes name them, with the cell,
      and are kept in `nb.metadata.rawtag.tidy` too;
    - widget outputs (progress bars, explorer menus) and saved ipywidgets state are dropped (see below).

    Chapter: 04_sweep
    """
    notes = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        tags = cell.metadata.get("tags", [])
        first = next((line.strip() for line in cell.source.splitlines() if line.strip()), "")
        where = f"In [{cell.get('execution_count') or ' '}] {first[:60]!r}"
        if "injected-parameters" in tags:
            _tag(cell, "remove-cell")
            cell.source = relative_paths(cell.source, pairs)
        elif _installs_rawtag(cell.source) or _glue_only(cell.source):
            _tag(cell, "remove-cell")
        outputs, stream_lines, rich = [], 0, False
        for out in cell.get("outputs", []):
            kind = out.get("output_type")
            if kind == "stream":
                text = out.text if isinstance(out.text, str) else "".join(out.text)
                if out.get("name") == "stderr":
                    text, found = _strip_warnings(text)
                    notes += [f"{where}: {relative_paths(line, pairs)}" for line in found]
                if relative_paths(text, pairs) != text:
                    notes.append(f"{where}: printed a path of this machine")
                    text = relative_paths(text, pairs)
                if not text:
                    continue
                out.text = text
                stream_lines += text.count("\n") + (not text.endswith("\n"))
            elif kind in ("display_data", "execute_result"):
                data = out.get("data", {})
                if WIDGET_VIEW in data:  # a progress bar or a control: nothing a page without a kernel can use
                    continue
                rich = rich or any(m.startswith("image/") or m in ("text/html", "text/markdown") for m in data)
                for mime in _TEXT_MIMES:
                    if mime in data:
                        value = data[mime] if isinstance(data[mime], str) else "".join(data[mime])
                        if relative_paths(value, pairs) != value:
                            notes.append(f"{where}: showed a path of this machine ({mime})")
                            data[mime] = relative_paths(value, pairs)
            elif kind == "error":
                out.evalue = relative_paths(out.evalue, pairs)
                out.traceback = [relative_paths(line, pairs) for line in out.traceback]
            outputs.append(out)
        if "outputs" in cell:
            cell.outputs = outputs
        if stream_lines > HIDE_OUTPUT_LINES and not rich and "remove-cell" not in cell.metadata.get("tags", []):
            _tag(cell, "hide-output")
    if "papermill" in nb.metadata:
        nb.metadata["papermill"] = _relative_everywhere(nb.metadata["papermill"], pairs)
    # The book has no kernel: saved widget state would make myst-nb load the widget manager from a CDN
    # to draw controls that do nothing; without it a widget's output is empty (the static view before it
    # stays), and the page needs nothing from the network.
    nb.metadata.pop("widgets", None)
    notes = list(dict.fromkeys(notes))  # once each (a chapter running others repeats their warnings)
    nb.metadata.setdefault("rawtag", {})["tidy"] = notes
    return notes


def _execute(chosen: list[Path], out: Path, params: dict, kernel: str, log) -> dict:
    from papermill.exceptions import PapermillExecutionError

    times = {}
    for chapter in chosen:
        target = out / chapter.name
        started = time.perf_counter()
        try:
            notes = _papermill(chapter, target, params, kernel)
        except PapermillExecutionError as e:
            first_line = next((line for line in e.source.splitlines() if line.strip()), "")
            error = e.evalue.strip().splitlines()[-1] if e.evalue.strip() else ""
            raise BookError(f"chapter {chapter.stem} failed in cell In [{e.exec_count}] ({first_line.strip()!r}): "
                            f"{e.ename}: {error}; the executed copy with the traceback is "
                            f"{out / (chapter.stem + '.failed.ipynb')}") from None
        times[chapter.stem] = time.perf_counter() - started
        log(f"{chapter.stem:<24} {times[chapter.stem]:7.1f} s   -> {target}")
        for note in notes:
            log(f"    tidied: {note}")
    return times


def build(executed: str | os.PathLike = EXECUTED, out: str | os.PathLike = ".", log=print) -> Path:
    """Build the HTML book from the executed chapters into `out/_build/html` (Jupyter Book's layout);
    returns the path of its index.html.

    Chapter: 04_sweep
    """
    root = _root()
    executed, out = locate(executed), locate(out) / "_build"
    missing = [c.name for c in chapters(root) if not (executed / c.name).exists()]
    if missing:
        raise BookError(f"not executed yet: {', '.join(missing)}; run `rawtag book run` first "
                        f"(or `rawtag book run --only NN` for one chapter)")
    _check_executed(executed, chapters(root))
    stage = out / "book-source"
    shutil.rmtree(stage, ignore_errors=True)
    (stage / "notebooks").mkdir(parents=True)
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy2(root / name, stage / name)
    shutil.copytree(root / "book", stage / "book")
    for item in executed.iterdir():
        if item.suffix == ".ipynb" and not item.name.endswith((".failed.ipynb", ".running.ipynb")):
            shutil.copy2(item, stage / "notebooks" / item.name)
        elif item.is_dir() and not item.name.startswith("."):
            shutil.copytree(item, stage / "notebooks" / item.name, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("*.failed.ipynb", "*.running.ipynb"))
    command = [str(Path(sys.executable).with_name("jupyter-book")), "build", str(stage),
               "--path-output", str(out.parent), "--builder", "html"]
    if not Path(command[0]).exists():
        command[0] = shutil.which("jupyter-book") or "jupyter-book"
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    log_path = out / "build.log"
    log_path.write_text(done.stdout + done.stderr)
    html = out / "html"
    if done.returncode != 0 or not (html / "index.html").exists():
        failure = "failed" if done.returncode != 0 else f"wrote no {html / 'index.html'}"
        raise BookError(f"jupyter-book build {failure}: {_last_error(done.stdout + done.stderr)} (full log: "
                        f"{log_path})")
    warnings = [line for line in (done.stdout + done.stderr).splitlines() if "WARNING" in line]
    log(f"book built in {time.perf_counter() - started:.1f} s: {html / 'index.html'} "
        f"({len(warnings)} warnings; log: {log_path})")
    return html / "index.html"


def _check_executed(executed: Path, chosen: list[Path]) -> None:
    """Refuse an executed chapter that is not a readable notebook (cut short, edited), naming it and the fix."""
    import nbformat

    for chapter in chosen:
        try:
            nbformat.validate(nbformat.read(executed / chapter.name, as_version=4))
        except Exception as e:  # nbformat raises JSON, validation and reader errors of several types
            why = " ".join(str(e).split())[:160] or type(e).__name__
            raise BookError(f"{executed / chapter.name} (chapter {chapter.stem}) is not a readable notebook "
                            f"({why}); run it again: `rawtag book run --only {chapter.stem[:2]}`") from None


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _last_error(log: str) -> str:
    """The line of a build log that says what went wrong (the last one naming an error), without colours."""
    lines = [line.strip() for line in _ANSI.sub("", log).splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    return ((errors or lines or ["no output"])[-1])[:300]


def run_variant(chapter: str | os.PathLike, out: str | os.PathLike, title: str, parameters: dict,
                kernel: str = "python3") -> Path:
    """Execute `chapter` with `parameters` into `out` and give the copy its own title (its first heading
    is demoted), so a book can hold several runs of one chapter. Chapter 04 runs chapter 03 this way, once per
    setting of its sweep.

    Chapter: 04_sweep
    """
    import nbformat

    out, chapter = Path(out), Path(chapter)
    shown = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in parameters.items()
                      if k not in ("data_root", "runs_root"))

    def retitle(nb):
        heading = next((c for c in nb.cells if c.cell_type == "markdown" and c.source.startswith("# ")), None)
        if heading is not None:
            heading.source = "#" + heading.source
        intro = nbformat.v4.new_markdown_cell(f"# {title}\n\nA section of the chapter that ran it: the notebook "
                                              f"{chapter.stem} executed again with {shown}. Its text and numbers "
                                              "below are computed for these settings.")
        intro.id = "variant-title"
        nb.cells.insert(0, intro)

    try:
        _papermill(chapter, out, parameters, kernel, edit=retitle)
    except RuntimeError as e:  # kernels started side by side can race for the same free port: start it again
        if "Kernel died before replying to kernel_info" not in str(e):
            raise
        _papermill(chapter, out, parameters, kernel, edit=retitle)
    return out


def run_variants(chapter: str | os.PathLike, variants: list[tuple[str | os.PathLike, str, dict]],
                 processes: int | None = None, kernel: str = "python3") -> list[Path]:
    """`run_variant` for each (out, title, parameters), `processes` at a time (default: one per core): a
    copy keeps about one core busy (its kernel), so two copies at a time halve the wait on 2 cores. Side by
    side, each runs in its own process, as papermill changes the working directory. Returns the copies'
    paths, in the order of `variants`.

    Chapter: 04_sweep
    """
    from .concurrent import finished, worker_pool

    processes = max(1, min(processes or os.cpu_count() or 1, len(variants)))
    if processes == 1:
        return [run_variant(chapter, out, title, parameters, kernel) for out, title, parameters in variants]
    copies = [None] * len(variants)
    with worker_pool(processes, spawn=True) as pool:
        for i, future in finished(pool, run_variant, [(chapter, *variant, kernel) for variant in variants],
                                  len(variants)):
            copies[i] = future.result()
    return copies


# ---- Sphinx extension: MathJax served from the built book ---------------------------------------------

MATHJAX_PACKAGE = "sphinx-mathjax-offline"  # MathJax 3.2 as files in a Python package (see pyproject.toml)
MATHJAX_PATH = "mathjax/tex-svg.js"  # under the book's _static; SVG output needs no web fonts
MATHJAX_FILES = ("tex-svg.js", "input/tex/extensions")  # the component, and the TeX packages it may autoload


def mathjax_source() -> Path:
    """The folder of MathJax's files installed by the `sphinx-mathjax-offline` package.

    Chapter: 04_sweep
    """
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        dist = distribution(MATHJAX_PACKAGE)
    except PackageNotFoundError:
        raise BookError(f"the book serves MathJax itself (no CDN): pip install {MATHJAX_PACKAGE} "
                        f"(it is in rawtag's [book] extra)") from None
    folder = Path(dist.locate_file(f"{MATHJAX_PACKAGE}/static/mathjax"))
    if not (folder / MATHJAX_FILES[0]).exists():
        raise BookError(f"{MATHJAX_PACKAGE} is installed but has no {folder / MATHJAX_FILES[0]}")
    return folder


def copy_mathjax(static: Path) -> Path:
    """Copy the MathJax files the book needs into `static/mathjax` (2.7 MB); returns the script's path.

    Chapter: 04_sweep
    """
    source, target = mathjax_source(), static / Path(MATHJAX_PATH).parent
    for name in MATHJAX_FILES:
        if (source / name).is_dir():
            shutil.copytree(source / name, target / name, dirs_exist_ok=True)
        else:
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / name, target / name)
    return static / MATHJAX_PATH


def setup(app):
    """Sphinx extension (`_config.yml`: `sphinx: extra_extensions: [rawtag.book]`): pages load MathJax from
    `_static/mathjax/tex-svg.js`, copied there from the installed package, instead of a CDN, so the book's
    maths renders offline. A `mathjax_path` set explicitly to a local file is left alone.

    Chapter: 04_sweep
    """

    def local_mathjax(app, config):
        if "://" in str(config.mathjax_path) or str(config.mathjax_path).startswith("//"):
            mathjax_source()  # fail at the start of the build, not at its end
            config.mathjax_path = MATHJAX_PATH

    def put_in_place(app, exception):
        if exception is None and app.builder.format == "html" and config_is_ours(app.config):
            copy_mathjax(Path(app.outdir) / "_static")

    def config_is_ours(config):
        return config.mathjax_path == MATHJAX_PATH

    def plain_glue(app):
        # myst-nb sets glued text in bold; the book glues whole phrases into sentences, so they read as prose
        static = Path(app.doctreedir).parent / "rawtag-static"
        static.mkdir(parents=True, exist_ok=True)
        (static / "rawtag.css").write_text("span.pasted-text { font-weight: inherit; }\n")
        app.config.html_static_path.append(str(static))
        app.add_css_file("rawtag.css")

    app.connect("config-inited", local_mathjax)
    app.connect("builder-inited", plain_glue)
    app.connect("build-finished", put_in_place)
    app.connect("html-page-context", unique_assets, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


def unique_assets(app, pagename, templatename, context, doctree) -> None:
    """Each script and style sheet once per page. Jupyter Book 1.0 with Sphinx 7 adds sphinx-thebe's and
    sphinx-togglebutton's inline scripts twice, and the second `const THEBE_JS_URL` is a JavaScript error
    ("Identifier 'THEBE_JS_URL' has already been declared") on every page.

    Chapter: 04_sweep
    """
    for key in ("script_files", "css_files"):
        assets, seen, kept = context.get(key), set(), []
        if not isinstance(assets, list):
            continue
        for asset in assets:
            attributes = getattr(asset, "attributes", {}) or {}
            name = getattr(asset, "filename", asset) or ""  # None (from app.add_js_file) and "" are one
            ident = (str(name), tuple(sorted((k, str(v)) for k, v in attributes.items())))
            if ident not in seen:
                seen.add(ident)
                kept.append(asset)
        context[key] = kept
