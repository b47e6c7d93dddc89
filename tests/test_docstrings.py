"""The project's docstring rule: every module, and every public function and class a module defines, has a
docstring that names the chapter teaching it on a line of its own, `Chapter: NN_name`, where
notebooks/NN_name.ipynb exists."""
from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import rawtag

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
CHAPTER = re.compile(r"^Chapter: (0[1-8]_[a-z_]+)$", re.MULTILINE)


def modules():
    """rawtag and every module under it, imported."""
    names = [rawtag.__name__] + [m.name for m in pkgutil.walk_packages(rawtag.__path__, rawtag.__name__ + ".")]
    return [importlib.import_module(name) for name in sorted(names)]


def chapter_problem(doc: str | None) -> str | None:
    """What is wrong with a docstring under the rule, or None when it follows it."""
    doc = inspect.cleandoc(doc or "")
    if not doc:
        return "no docstring"
    chapters = CHAPTER.findall(doc)
    if not chapters:
        return "no `Chapter: NN_name` line"
    missing = [c for c in chapters if not (NOTEBOOKS / f"{c}.ipynb").exists()]
    return f"names no chapter notebook: {', '.join(missing)}" if missing else None


def public_definitions(module):
    """The public functions and classes a module defines itself (not those it imports)."""
    for name, obj in sorted(vars(module).items()):
        if name.startswith("_") or not (inspect.isfunction(obj) or inspect.isclass(obj)):
            continue
        if getattr(obj, "__module__", None) == module.__name__:
            yield name, obj


def test_every_module_and_public_definition_names_its_chapter():
    offenders = []
    for module in modules():
        problem = chapter_problem(module.__doc__)
        if problem:
            offenders.append(f"{module.__name__} (module): {problem}")
        for name, obj in public_definitions(module):
            # a class's docstring is its own: inspect.getdoc would inherit one from a base class
            problem = chapter_problem(obj.__doc__)
            if problem:
                offenders.append(f"{module.__name__}.{name}: {problem}")
    assert not offenders, f"{len(offenders)} without a chapter line:\n" + "\n".join(offenders)


def test_the_rule_itself():
    assert chapter_problem(None) == "no docstring"
    assert chapter_problem("Does a thing. Chapter 03.") == "no `Chapter: NN_name` line"
    assert chapter_problem("Does a thing.\n\n    Chapter: 03_base_cnn\n    ") is None
    assert chapter_problem("Does a thing.\n\nChapter: 03_base_cnns") == "names no chapter notebook: 03_base_cnns"
    assert chapter_problem("Does a thing.\n\nChapter: 09_more") == "no `Chapter: NN_name` line"
