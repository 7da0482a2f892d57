"""Lessons as Jupyter notebooks, for learners who prefer Jupyter (jupytext does the conversion).

Owns the notebook task's action and the jupytext pairing of build/notebooks/ with modules/.
"""
from __future__ import annotations

from tito.manifest import Course, Module


def pairing(course: Course, module: Module) -> str:
    """jupytext formats pairing build/notebooks/NN_name.ipynb with modules/NN_name/name.py.

    Each prefix is relative to the other file's folder (both are two levels below the course root)
    and `NN_` is the notebook's file-name prefix, so `jupytext --sync` works from either side: edit
    the notebook, sync, and the lesson (which the build watches) is updated.
    """
    notebooks = course.relative(course.build.notebooks)
    return f"../../{notebooks}/{module.number}_/ipynb,../../modules/{module.id}//py:percent"


def write_notebook(course: Course, module: Module) -> None:
    import jupytext  # imported here: it is slow to import and only this task needs it

    notebook = jupytext.read(course.root / module.source, fmt="py:percent")
    notebook.metadata.setdefault("jupytext", {})["formats"] = pairing(course, module)
    path = course.build.notebook(module)
    path.parent.mkdir(parents=True, exist_ok=True)
    jupytext.write(notebook, path, fmt="ipynb")
