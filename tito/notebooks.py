"""Lessons as Jupyter notebooks, for learners who prefer Jupyter (jupytext does the conversion)."""
from __future__ import annotations

from pathlib import Path

from tito.manifest import Module

NOTEBOOK_DIR = Path("build") / "notebooks"


def notebook_path(module: Module) -> Path:
    return NOTEBOOK_DIR / f"{module.id}.ipynb"


def write_notebook(module: Module) -> None:
    import jupytext  # imported here: it is slow to import and only this task needs it

    notebook = jupytext.read(module.source, fmt="py:percent")
    notebook.metadata.setdefault("jupytext", {})["formats"] = "ipynb,py:percent"
    notebook_path(module).parent.mkdir(parents=True, exist_ok=True)
    jupytext.write(notebook, notebook_path(module), fmt="ipynb")
