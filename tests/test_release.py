"""The student edition (`tito.release`): stubs with hints, nothing of the solutions, byte-identical
builds, and a release that fails with `path:line` on a badly marked lesson.

The release is built from a temporary copy of the course (every lesson that exists today).
"""
from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

from tito import release
from tito.manifest import load

from .conftest import CourseCopy, make_copy

LESSON = "modules/03_activations/activations.py"


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> CourseCopy:
    return make_copy(tmp_path_factory.mktemp("release") / "course")


@pytest.fixture(scope="module")
def built(course) -> Path:
    release.build_release(load(course.root), Path("build/release"))
    return course.root / "build" / "release"


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def lessons(root: Path) -> list[Path]:
    return [root / m.source for m in load(root).modules if (root / m.source).is_file()]


def solution_blocks(text: str):
    """(indentation, hint lines, solution lines) of each block, straight from the instructor's text.

    The hint is every `### HINT:` line directly above BEGIN (a long hint spans several)."""
    lines = text.splitlines()
    for index, line in enumerate(lines):
        match = re.match(r"^(\s*)### BEGIN SOLUTION\s*$", line)
        if match:
            end = next(j for j in range(index, len(lines)) if lines[j].strip() == "### END SOLUTION")
            hints, above = [], index - 1
            while re.match(r"^\s*### HINT:\s?(.*?)\s*$", lines[above]):
                hints.insert(0, re.match(r"^\s*### HINT:\s?(.*?)\s*$", lines[above]).group(1))
                above -= 1
            yield match.group(1), hints, lines[index + 1 : end]


def test_two_builds_are_byte_identical(course, built, tmp_path):
    again = tmp_path / "again"
    release.build_release(load(course.root), again)
    first, second = files_of(built), files_of(again)
    assert list(first) == list(second)
    assert first == second


def test_rebuilding_in_place_replaces_the_release_cleanly(course, tmp_path):
    out = tmp_path / "out"
    release.build_release(load(course.root), out)
    (out / "stray.txt").write_text("left from an older release")
    release.build_release(load(course.root), out)
    assert not (out / "stray.txt").exists()
    assert not [p for p in tmp_path.iterdir() if p.name != "out"], "temporary folders were left behind"


def raises(text: str, skip: set[int] = frozenset()) -> list[tuple[str, str]]:
    """(indentation, message) of every `raise NotImplementedError(...)` with an argument, in order,
    except those on the `skip` lines."""
    found = []
    for node in ast.walk(ast.parse(text)):
        exc = node.exc if isinstance(node, ast.Raise) and node.lineno not in skip else None
        if isinstance(exc, ast.Call) and getattr(exc.func, "id", "") == "NotImplementedError" and exc.args:
            arg = exc.args[0]
            message = arg.value if isinstance(arg, ast.Constant) else ast.unparse(arg)
            found.append((node.lineno, " " * node.col_offset, message))
    return [(indent, message) for _, indent, message in sorted(found)]


def test_every_solution_becomes_a_stub_with_its_hint(course, built):
    total = 0
    for lesson in lessons(course.root):
        source = lesson.read_text()
        stubbed = (built / lesson.relative_to(course.root)).read_text()
        assert "### BEGIN SOLUTION" not in stubbed and "### END SOLUTION" not in stubbed
        expected = [(indent, " ".join(hints) or release.DEFAULT_HINT) for indent, hints, _ in solution_blocks(source)]
        new = raises(stubbed)
        for stub in raises(source, skip=solution_lines(source)):  # a lesson may raise NotImplementedError itself
            new.remove(stub)
        assert new == expected, lesson.name
        for _, hints, _ in solution_blocks(source):
            assert all(f"### HINT: {hint}" in stubbed for hint in hints), "the hint comments stay for the student"
        total += len(expected)
    assert total >= 10, "the course's lessons should hold solutions to stub"


def test_no_solution_code_is_left(course, built):
    for lesson in lessons(course.root):
        text = lesson.read_text()
        stubbed = (built / lesson.relative_to(course.root)).read_text()
        outside = "\n".join(line for line in _outside_solutions(text))
        for _, _, solution in solution_blocks(text):
            for line in solution:
                if len(line.strip()) >= 25 and line.strip() not in outside:
                    assert line not in stubbed, f"{lesson.name}: solution line left: {line.strip()!r}"


def solution_lines(text: str) -> set[int]:
    """Line numbers inside solution blocks."""
    inside, found = False, set()
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip() in ("### BEGIN SOLUTION", "### END SOLUTION"):
            inside = line.strip() == "### BEGIN SOLUTION"
        elif inside:
            found.add(number)
    return found


def _outside_solutions(text: str):
    inside = False
    for line in text.splitlines():
        if line.strip() in ("### BEGIN SOLUTION", "### END SOLUTION"):
            inside = line.strip() == "### BEGIN SOLUTION"
        elif not inside:
            yield line.strip()


def test_a_distinctive_solution_line_is_absent_and_the_rest_of_the_lesson_stays(course, built):
    source = (course.root / LESSON).read_text()
    stubbed = (built / LESSON).read_text()
    solution = 'return Tensor.from_op(np.maximum(x.data, 0), "relu", (x,), ("output",))'
    assert solution in source and solution not in stubbed
    for kept in ("def forward(self, x):", '"""max(0, x), elementwise."""', "#| export", "def relu_naive(values):",
                 "# ## 1. ReLU: max(0, x) -- naive against vectorised", "assert relu(Tensor("):  # fmt: skip
        assert kept in stubbed


def test_stubbed_lessons_compile_and_export(course, built):
    for lesson in lessons(built):
        compile(lesson.read_text(), str(lesson), "exec")
    result = CourseCopy(built).doit("export", timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    for module in load(built).modules:
        if (built / module.source).is_file():
            for exported in module.exported_files:
                assert (built / exported).is_file()


def test_a_stub_raises_not_implemented_with_its_hint(course, tmp_path):
    learner = CourseCopy(tmp_path / "learner")
    release.build_release(load(course.root), learner.root)
    assert learner.doit("export:01_setup", timeout=120).returncode == 0
    hint = " ".join(next(solution_blocks((course.root / "modules/01_setup/setup.py").read_text()))[1]) or release.DEFAULT_HINT
    result = learner.run(sys.executable, "-c", "from tinytorch.core.setup import system_info; system_info()")
    assert result.returncode != 0
    assert f"NotImplementedError: {hint}" in result.stderr, result.stderr


def test_no_exported_files_no_build_and_no_instructor_tests(course, built):
    # make the instructor's copy look used: exported files and a build folder exist there
    assert CourseCopy(course.root).doit("export:01_setup", timeout=120).returncode == 0
    assert (course.root / "tinytorch/core/setup.py").is_file()
    release.build_release(load(course.root), Path("build/release"))
    shipped = files_of(built)
    core = sorted(name for name in shipped if name.startswith("tinytorch/core/"))
    assert core == ["tinytorch/core/__init__.py"]
    assert not any(name.startswith(("build/", "tests/", ".venv/")) or "__pycache__" in name for name in shipped)
    for needed in ("Makefile", "pyproject.toml", "dodo.py", "modules/course.toml", "tito/cli.py",
                   "tito/export.py", "tinytorch/__init__.py", "bench/harness.py"):  # fmt: skip
        assert needed in shipped, needed
    assert {name for name in shipped if name.startswith("checkpoints/")} == {
        p.relative_to(course.root).as_posix() for p in (course.root / "checkpoints").iterdir() if p.is_file()
    }


def test_the_readme_is_the_learners(course, built):
    readme = (built / "README.md").read_text()
    assert readme.splitlines()[2].startswith("**This is the student edition.**"), "it says which edition it is"
    assert "make install" in readme and "make complete MODULE=" in readme and "jupytext --sync" in readme
    assert release.MODULE_TABLE not in readme
    for module in load(course.root).modules:
        assert f"`{module.id}` {module.title}" in readme and module.checkpoint.capability in readme


# --- a badly marked lesson fails the release with path:line ---------------------------------------


def broken_copy(tmp_path, old: str, new: str) -> CourseCopy:
    copy = make_copy(tmp_path / "course", module_count=3)
    copy.edit(LESSON, old, new)
    return copy


RELU_SOLUTION = """        ### BEGIN SOLUTION
        return Tensor.from_op(np.maximum(x.data, 0), "relu", (x,), ("output",))
        ### END SOLUTION
"""


def line_of(copy: CourseCopy, text: str) -> int:
    return copy.path(LESSON).read_text().splitlines().index(text) + 1


def assert_release_fails(copy: CourseCopy, location: str, words: str, tmp_path) -> None:
    out = tmp_path / "release"
    out.mkdir()
    (out / "previous.txt").write_text("the previous release")
    with pytest.raises(release.ReleaseError) as failure:
        release.build_release(load(copy.root), out)
    assert location in str(failure.value) and words in str(failure.value), str(failure.value)
    assert (out / "previous.txt").read_text() == "the previous release", "a failed build must not touch the release"
    from doit.exceptions import TaskFailed

    outcome = release.doit_action(load(copy.root), out)
    assert isinstance(outcome, TaskFailed) and location in str(outcome)


def test_begin_without_end_fails_with_path_and_line(tmp_path):
    copy = broken_copy(tmp_path, RELU_SOLUTION, RELU_SOLUTION.replace("        ### END SOLUTION\n", ""))
    line = line_of(copy, "        ### BEGIN SOLUTION")
    assert_release_fails(copy, f"{LESSON}:{line}:", "BEGIN SOLUTION is not closed", tmp_path)


def test_end_without_begin_fails_with_path_and_line(tmp_path):
    copy = broken_copy(tmp_path, RELU_SOLUTION, RELU_SOLUTION.replace("        ### BEGIN SOLUTION\n", ""))
    lines = copy.path(LESSON).read_text().splitlines()
    line = next(number for number, text in enumerate(lines, 1) if text.strip() == "### END SOLUTION")
    assert_release_fails(copy, f"{LESSON}:{line}:", "END SOLUTION without a BEGIN", tmp_path)


def test_marker_at_module_top_level_fails(tmp_path):
    top_level = "# %%\n### BEGIN SOLUTION\nANSWER = 42\n### END SOLUTION\n\n"
    copy = broken_copy(tmp_path, "# %% [markdown]\n# ## 1. ReLU", top_level + "# %% [markdown]\n# ## 1. ReLU")
    line = line_of(copy, "### BEGIN SOLUTION")
    assert_release_fails(copy, f"{LESSON}:{line}:", "module top level", tmp_path)


def test_marker_in_a_class_body_fails(tmp_path):
    old = '    """max(0, x), elementwise."""\n'
    copy = broken_copy(tmp_path, old, old + "\n    ### BEGIN SOLUTION\n    name = 'relu'\n    ### END SOLUTION\n")
    line = line_of(copy, "    ### BEGIN SOLUTION")
    assert_release_fails(copy, f"{LESSON}:{line}:", "class ReLU", tmp_path)


def test_stub_that_would_not_parse_fails(tmp_path):
    # valid Python (markers are comments), but the block spans the `else:` of an if statement
    old = RELU_SOLUTION
    new = """        if x is None:
            ### BEGIN SOLUTION
            raise TypeError("x is required")
        else:
            ### END SOLUTION
                return Tensor.from_op(np.maximum(x.data, 0), "relu", (x,), ("output",))
"""
    copy = broken_copy(tmp_path, old, new)
    begin = line_of(copy, "            ### BEGIN SOLUTION")
    words = f"would not compile (unexpected indent) after stubbing the solution block at line {begin}"
    assert_release_fails(copy, f"{LESSON}:{begin + 4}:", words, tmp_path)


def test_lesson_with_a_syntax_error_fails(tmp_path):
    copy = broken_copy(tmp_path, "def relu_naive(values):", "def relu_naive(values)")
    line = line_of(copy, "def relu_naive(values)")
    assert_release_fails(copy, f"{LESSON}:{line}:", "syntax error", tmp_path)


# --- instructor-only cells ----------------------------------------------------------------------


def test_instructor_cells_are_dropped_and_the_rest_kept(tmp_path):
    note = "# %% [markdown]\n#| instructor\n# Grading note: students often forget the max shift.\n\n"
    check = "# %%\n#| instructor\nassert ReLU()(Tensor([-1.0])).data.tolist() == [0.0]  # answer key\n\n"
    copy = broken_copy(tmp_path, "# %% [markdown]\n# ## 1. ReLU", note + check + "# %% [markdown]\n# ## 1. ReLU")
    summary = release.build_release(load(copy.root), tmp_path / "release")
    stubbed = (tmp_path / "release" / LESSON).read_text()
    assert summary.dropped_cells == 2
    assert "Grading note" not in stubbed and "answer key" not in stubbed and "#| instructor" not in stubbed
    assert "# ## 1. ReLU: max(0, x)" in stubbed
    source_without = copy.path(LESSON).read_text().replace(note + check, "")
    assert stubbed.count("# %%") == source_without.count("# %%")


def test_an_exported_instructor_cell_is_refused(tmp_path):
    cell = "# %%\n#| export\n#| instructor\nSECRET = 1\n\n"
    copy = broken_copy(tmp_path, "# %% [markdown]\n# ## 1. ReLU", cell + "# %% [markdown]\n# ## 1. ReLU")
    line = line_of(copy, "#| instructor") - 2
    assert_release_fails(copy, f"{LESSON}:{line}:", "cannot also be `#| export`", tmp_path)


def test_hint_text_with_quotes_and_backslashes_is_a_valid_literal():
    text = (
        'def f():\n    ### HINT: use "np.where" and a \\ backslash\n'
        "    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION\n"
    )
    stubbed = release.stub_lesson(text, "lesson.py").text
    namespace = {}
    exec(compile(stubbed, "lesson.py", "exec"), namespace)
    with pytest.raises(NotImplementedError, match=re.escape('use "np.where" and a \\ backslash')):
        namespace["f"]()


def test_text_without_markers_is_unchanged():
    text = "# %%\ndef f():\n    return 1\n"
    assert release.stub_lesson(text, "x.py").text == text
