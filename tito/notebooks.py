"""Lessons as Jupyter notebooks, for learners who prefer Jupyter (jupytext does the conversion)."""
from __future__ import annotations

from pathlib import Path

from tito.manifest import Module

NOTEBOOK_DIR = Path("build") / "notebooks"


def notebook_path(module: Module) -> Path:
    return NOTEBOOK_DIR / f"{module.id}.ipynb"


def pairing(module: Module) -> str:
    """jupytext formats pairing build/notebooks/NN_name.ipynb with modules/NN_name/name.py.

    Each prefix is relative to the other file's folder (both are two levels below the course root)
    and `NN_` is the notebook's file-name prefix, so `jupytext --sync` works from either side: edit
    the notebook, sync, and the lesson (which the build watches) is updated.
    """
    return f"../../{NOTEBOOK_DIR.as_posix()}/{module.number}_/ipynb,../../modules/{module.id}//py:percent"


def write_notebook(module: Module) -> None:
    import jupytext  # imported here: it is slow to import and only this task needs it

    notebook = jupytext.read(module.source, fmt="py:percent")
    notebook.metadata.setdefault("jupytext", {})["formats"] = pairing(module)
    notebook_path(module).parent.mkdir(parents=True, exist_ok=True)
    jupytext.write(notebook, notebook_path(module), fmt="ipynb")
