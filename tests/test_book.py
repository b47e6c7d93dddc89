"""The book: every chapter executes under papermill in the smoke profile, the HTML builds and holds what
the chapters promise, sources carry no outputs, and a failing chapter is reported by name and cell."""
from __future__ import annotations

import json
import re
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
    assert "## Exercises" in text
    assert "rawtag.exercises." in text, "exercises name their solutions in the library"


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
    assert sweep == sorted(f"03_base_cnn_L{a}_S{b}.ipynb"
                           for a, b in [(1024, 1024), (1024, 512), (512, 512), (512, 256), (256, 256)])


@pytest.mark.slow
def test_glued_numbers_are_the_runs_numbers(smoke_book):
    root, _, _ = smoke_book
    ch03 = glued(root / "executed" / "03_base_cnn.ipynb")
    results = json.loads((root / "runs" / "synthetic-smoke" / "base" / "results.json").read_text())
    assert float(ch03["valid_auc"]) == pytest.approx(results["valid"]["roc_auc"])
    assert float(ch03["test_auc"]) == pytest.approx(results["test"]["roc_auc"])
    assert ch03["data_label"].strip("'") == "synthetic set (96 clips), smoke profile"
    ch06 = glued(root / "executed" / "06_improvements.ipynb")
    improved = json.loads((root / "runs" / "synthetic-smoke" / "improved" / "results.json").read_text())
    assert float(ch06["improved_auc"]) == pytest.approx(improved["valid"]["roc_auc"])


@pytest.mark.slow
def test_the_built_book_holds_the_table_players_and_figures(smoke_book):
    _, _, index = smoke_book
    html = index.parent
    assert index.exists()
    pages = {p.stem: p.read_text() for p in (html / "notebooks").glob("*.html")}
    assert set(pages) == {p.stem for p in CHAPTERS}
    sweep = pages["04_sweep"]
    assert "paper&#x2019;s AUC (MTAT, Table 1)" in sweep or "paper's AUC (MTAT, Table 1)" in sweep
    assert "0.7931" in sweep and "synthetic set (96 clips), smoke profile" in sweep
    assert 'href="sweep/03_base_cnn_L512_S256.html"' in sweep, "the table links each executed copy"
    assert (html / "notebooks" / "sweep" / "03_base_cnn_L512_S256.html").exists()
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
    with pytest.raises(book.BookError, match=r"chapter 02_broken failed in cell In \[\d+\] \(.raise ValueError.*ValueError: no such clip"):
        book.run("smoke", out=tmp_path / "executed", log=lines.append)
    assert (tmp_path / "executed" / "01_fine.ipynb").exists()
    assert (tmp_path / "executed" / "02_broken.failed.ipynb").exists()
    assert not (tmp_path / "executed" / "02_broken.ipynb").exists(), "a failed chapter never looks finished"
    assert lines and lines[0].startswith("01_fine")
    with pytest.raises(book.BookError, match="not executed yet: 02_broken.ipynb"):
        book.build(tmp_path / "executed", out=tmp_path)
    with pytest.raises(book.BookError, match="no chapter '09'"):
        book.run("smoke", only=["09"], out=tmp_path / "executed")


def test_book_cli_rejects_unknown_profile(capsys):
    from rawtag.__main__ import main

    with pytest.raises(SystemExit):
        main(["book", "run", "--profile", "huge"])
    assert "invalid choice" in capsys.readouterr().err
