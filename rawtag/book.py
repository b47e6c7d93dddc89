"""The book: execute the chapters headless with papermill, then build the HTML with Jupyter Book 1.x.

`run` executes `notebooks/NN_*.ipynb` into a build folder (sources stay without outputs), one line per
chapter with its time; a failing chapter stops the run with its name, cell and error, and its executed
copy (with the traceback) is kept as `NAME.failed.ipynb`, never under the chapter's own name. `build`
copies the top-level `_config.yml`, `_toc.yml` and `book/` pages beside the executed chapters and builds
`_build/html`. The README shows both; `rawtag book run|build` calls them.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from .workspace import locate, project_root

EXECUTED = "_build/executed"


class BookError(RuntimeError):
    pass


def _root() -> Path:
    root = project_root()
    if root is None:
        raise BookError("no _toc.yml here or above: run `rawtag book` from the rawtag checkout")
    return root


def chapters(root: Path | None = None) -> list[Path]:
    """The chapter notebooks, in order (`notebooks/NN_name.ipynb`)."""
    return sorted(((root or _root()) / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def select(names: list[str] | None, root: Path | None = None) -> list[Path]:
    """The chapters named by number or name (`03`, `03_base_cnn`); all of them for None."""
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


def run(profile: str = "quick", only: list[str] | None = None, out: str | os.PathLike = EXECUTED,
        dataset: str | None = None, data_root: str = "data", runs_root: str = "runs", device: str = "auto",
        kernel: str = "python3", log=print) -> dict:
    """Execute chapters with papermill into `out`; returns {chapter: seconds}. Raises BookError naming the
    chapter and cell that failed."""
    from .profiles import profile as check_profile

    check_profile(profile)
    root = _root()
    out = locate(out)
    out.mkdir(parents=True, exist_ok=True)
    params = {"profile": profile, "dataset": dataset, "data_root": str(locate(data_root)),
              "runs_root": str(locate(runs_root)), "device": device}
    chosen = select(only, root)
    previous = os.environ.get("RAWTAG_PROJECT")
    os.environ["RAWTAG_PROJECT"] = str(root)  # chapters run in `out` find the project (chapter 04 needs 03)
    try:
        times = _execute(chosen, out, params, kernel, log)
    finally:
        if previous is None:
            os.environ.pop("RAWTAG_PROJECT", None)
        else:
            os.environ["RAWTAG_PROJECT"] = previous
    log(f"{'total':<24} {sum(times.values()):7.1f} s   ({profile} profile)")
    return times


def _papermill(chapter: Path, target: Path, parameters: dict, kernel: str, edit=None) -> None:
    """Execute `chapter` into `target` with papermill, in `target`'s folder. The copy is written as
    NAME.running.ipynb and renamed when done (after `edit(notebook)`, if given); a failed run is kept as
    NAME.failed.ipynb with its traceback and the PapermillExecutionError re-raised."""
    import nbformat
    import papermill
    from papermill.exceptions import PapermillExecutionError

    target.parent.mkdir(parents=True, exist_ok=True)
    running, failed = (target.with_name(f"{target.stem}.{state}.ipynb") for state in ("running", "failed"))
    for stale in (target, failed):
        stale.unlink(missing_ok=True)
    try:
        papermill.execute_notebook(str(chapter), str(running), parameters=parameters, kernel_name=kernel,
                                   cwd=str(target.parent), progress_bar=False, log_output=False)
    except PapermillExecutionError:
        os.replace(running, failed)
        raise
    except BaseException:
        running.unlink(missing_ok=True)
        raise
    if edit is not None:
        nb = nbformat.read(running, as_version=4)
        edit(nb)
        nbformat.write(nb, running)
    os.replace(running, target)


def _execute(chosen: list[Path], out: Path, params: dict, kernel: str, log) -> dict:
    from papermill.exceptions import PapermillExecutionError

    times = {}
    for chapter in chosen:
        target = out / chapter.name
        started = time.perf_counter()
        try:
            _papermill(chapter, target, params, kernel)
        except PapermillExecutionError as e:
            first_line = next((line for line in e.source.splitlines() if line.strip()), "")
            error = e.evalue.strip().splitlines()[-1] if e.evalue.strip() else ""
            raise BookError(f"chapter {chapter.stem} failed in cell In [{e.exec_count}] ({first_line.strip()!r}): "
                            f"{e.ename}: {error}; the executed copy with the traceback is "
                            f"{out / (chapter.stem + '.failed.ipynb')}") from None
        times[chapter.stem] = time.perf_counter() - started
        log(f"{chapter.stem:<24} {times[chapter.stem]:7.1f} s   -> {target}")
    return times


def build(executed: str | os.PathLike = EXECUTED, out: str | os.PathLike = ".", log=print) -> Path:
    """Build the HTML book from the executed chapters into `out/_build/html` (Jupyter Book's layout);
    returns the path of its index.html."""
    root = _root()
    executed, out = locate(executed), locate(out) / "_build"
    missing = [c.name for c in chapters(root) if not (executed / c.name).exists()]
    if missing:
        raise BookError(f"not executed yet: {', '.join(missing)}; run `rawtag book run` first "
                        f"(or `rawtag book run --only NN` for one chapter)")
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
    if done.returncode != 0:
        raise BookError(f"jupyter-book build failed (full log: {log_path}):\n{(done.stdout + done.stderr)[-3000:]}")
    html = out / "html"
    if not (html / "index.html").exists():
        raise BookError(f"jupyter-book wrote no {html / 'index.html'}:\n{(done.stdout + done.stderr)[-3000:]}")
    warnings = [line for line in (done.stdout + done.stderr).splitlines() if "WARNING" in line]
    log(f"book built in {time.perf_counter() - started:.1f} s: {html / 'index.html'} "
        f"({len(warnings)} warnings; log: {log_path})")
    return html / "index.html"


def run_variant(chapter: str | os.PathLike, out: str | os.PathLike, title: str, parameters: dict,
                kernel: str = "python3") -> Path:
    """Execute `chapter` with `parameters` into `out` and give the copy its own title (its first heading
    is demoted), so a book can hold several runs of one chapter. Chapter 04 runs chapter 03 this way."""
    import nbformat

    out, chapter = Path(out), Path(chapter)
    shown = ", ".join(f"{k}={v!r}" for k, v in parameters.items() if k not in ("data_root", "runs_root"))

    def retitle(nb):
        heading = next((c for c in nb.cells if c.cell_type == "markdown" and c.source.startswith("# ")), None)
        if heading is not None:
            heading.source = "#" + heading.source
        intro = nbformat.v4.new_markdown_cell(f"# {title}\n\n`{chapter.stem}` executed by papermill with {shown}.")
        intro.id = "variant-title"
        nb.cells.insert(0, intro)

    _papermill(chapter, out, parameters, kernel, edit=retitle)
    return out
