"""The class dashboard (`tito grade ... --html FILE`), checked in a real headless browser.

A seeded class of 24 learners over the whole course is made with tito.scoring's own Grade and Cell
and turned into the JSON report by tito.reports.report, so the page is fed exactly what `tito grade`
writes. Debian's chromium, driven by Playwright, loads the page; every number checked below is
recomputed here from the report, independently of the page's script. A screenshot is saved as
build/grade/dashboard.png. Where chromium or Playwright is missing the browser tests skip and say so.
"""
from __future__ import annotations

import json
import random
import shutil
from collections import Counter
from pathlib import Path

import pytest

from tito import dashboard, reports, scoring
from tito.manifest import load

from .conftest import ROOT, make_copy

CHROMIUM = shutil.which("chromium")
SCREENSHOT = ROOT / "build" / "grade" / "dashboard.png"
FAILING = ("failed", "timeout", "error", "syntax error")
MESSAGES = (
    "AssertionError: shapes differ: (2, 3) != (3, 2)",
    "NotImplementedError: Write this part yourself",
    "AssertionError: gradient mismatch </script><b>not markup</b>",
)


def seeded_class(seed: int = 18, size: int = 24) -> tuple[dict, object]:
    """A class whose learners got through a random number of checkpoints, then failed one way or another."""
    rng = random.Random(seed)
    course = load(ROOT)
    grades = []
    for number in range(size):
        reached = rng.randint(0, len(course.checkpoints))
        outcome = rng.choice(FAILING)
        cells = {}
        for index, checkpoint in enumerate(course.checkpoints):
            points = 3 + index % 4
            if index < reached:
                cells[checkpoint.id] = scoring.Cell("passed", points + 1, points + 1, points)
            elif index > reached:
                cells[checkpoint.id] = scoring.Cell("locked", 0, points, points, "not run: an earlier checkpoint did not pass")
            elif outcome == "failed":
                message = rng.choice(MESSAGES)
                cells[checkpoint.id] = scoring.Cell("failed", 1, points, points, "",
                                                  [{"name": f"test_{checkpoint.name}", "message": message}])  # fmt: skip
            else:
                cells[checkpoint.id] = scoring.Cell(outcome, 0, points, points, f"{outcome} in {checkpoint.name}")
        problems = ["lessons missing: 16_tinygpt"] if number % 7 == 0 else []
        grades.append(scoring.Grade(f"learner{number:02d}", cells, problems, 30.0 + number, outcome == "timeout"))
    limits = {"timeout": 900.0, "test_timeout": 120.0, "memory_mb": 4096}
    return reports.report(grades, course, limits), course


def expected_failures(report: dict, checkpoint: str) -> Counter:
    """Learners per failure message at one checkpoint, as the page must count them."""
    counts: Counter = Counter()
    for learner in report["learners"]:
        cell = learner["checkpoints"][checkpoint]
        if cell["status"] not in FAILING:
            continue
        found = [f"{t['name']}: {t['message'].strip().splitlines()[0]}" for t in cell["failed_tests"]]
        counts.update(set(found or [f"{cell['status']}: {cell['note'].strip().splitlines()[0]}"]))
    return counts


def test_the_page_is_self_contained_and_carries_the_report(tmp_path):
    report, course = seeded_class()
    page = tmp_path / "dashboard.html"
    dashboard.write(page, report, course)
    text = page.read_text(encoding="utf-8")
    assert "</script><b>" not in text, "a failure message must not close the data element"
    for remote in ("http://", "https://", "//cdn", "@import", "src="):
        assert remote not in text, f"the page refers to something outside itself: {remote}"
    embedded = text.split('<script type="application/json" id="data">', 1)[1].split("</script>", 1)[0]
    assert json.loads(embedded)["report"] == report


def test_tito_grade_writes_the_dashboard(tmp_path):
    course = make_copy(tmp_path / "course", module_count=1)
    folder = tmp_path / "submissions"
    lesson = course.path("modules/01_setup/setup.py")
    (folder / "done" / "modules" / "01_setup").mkdir(parents=True)
    shutil.copy2(lesson, folder / "done" / "modules" / "01_setup" / "setup.py")
    (folder / "empty").mkdir()
    result = course.tito("grade", str(folder), "--jobs", "2", "--timeout", "120", "--no-sandbox",
                         "--html", "build/grade/class.html", timeout=400)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Class dashboard: " in result.stdout
    report = json.loads(course.path("build/grade/report.json").read_text())
    text = course.path("build/grade/class.html").read_text(encoding="utf-8")
    embedded = json.loads(text.split('id="data">', 1)[1].split("</script>", 1)[0].replace("<\\/", "</"))
    assert embedded["report"] == report
    assert [l["learner"] for l in report["learners"]] == ["done", "empty"]
    assert {cell["status"] for cell in report["learners"][1]["checkpoints"].values()} == {"missing"}


# --- in the browser --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium; .ci/run does it)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install -e '.[test]')")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def opened(browser, tmp_path_factory):
    """The seeded class's page, loaded; with the console errors and the requests it made."""
    report, course = seeded_class()
    page_file = tmp_path_factory.mktemp("dashboard") / "dashboard.html"
    dashboard.write(page_file, report, course)
    page = browser.new_page(viewport={"width": 1500, "height": 1100})
    errors, requests = [], []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("request", lambda request: requests.append(request.url))
    page.goto(page_file.as_uri())
    page.wait_for_selector("#grid tbody tr.row")
    yield page, report, course, errors, requests, page_file
    page.close()


def test_the_page_loads_without_errors_or_requests(opened):
    page, _, _, errors, requests, page_file = opened
    assert errors == []
    assert requests == [page_file.as_uri()], "the page fetched something besides itself"


def test_the_grid_shows_every_learner_with_the_reports_scores_and_states(opened):
    page, report, _, _, _, _ = opened
    rows = page.eval_on_selector_all("#grid tbody tr.row", """rows => rows.map(r => ({
        learner: r.dataset.learner,
        score: r.querySelector('td.score').textContent,
        states: Object.fromEntries([...r.querySelectorAll('td[data-checkpoint]')].map(c => [c.dataset.checkpoint, c.dataset.status])),
    }))""")  # fmt: skip
    expected = {l["learner"]: l for l in report["learners"]}
    assert sorted(r["learner"] for r in rows) == sorted(expected)
    for row in rows:
        learner = expected[row["learner"]]
        assert row["score"] == f"{learner['score']:g}/{learner['max_score']}"
        assert row["states"] == {cid: cell["status"] for cid, cell in learner["checkpoints"].items()}
    assert page.text_content("#learner-count b") == str(len(report["learners"]))


def test_pass_rates_histogram_and_failures_equal_the_reports(opened):
    page, report, _, _, _, _ = opened
    learners = report["learners"]
    bars = page.eval_on_selector_all("#pass-rates .bar-row", "bars => bars.map(b => [b.dataset.checkpoint, +b.dataset.passed, b.querySelector('.rate').textContent])")
    assert [b[0] for b in bars] == report["checkpoints"]
    for checkpoint, passed, label in bars:
        expected = sum(l["checkpoints"][checkpoint]["status"] == "passed" for l in learners)
        assert passed == expected and label.startswith(f"{expected}/{len(learners)} · ")
    histogram = page.eval_on_selector_all("#histogram .bin", "bins => bins.map(b => +b.dataset.count)")
    expected_bins = Counter(min(9, int(10 * l["score"] / l["max_score"])) for l in learners)
    assert histogram == [expected_bins[i] for i in range(10)]
    mean = sum(l["score"] for l in learners) / len(learners)
    assert float(page.text_content("#mean-score b")) == pytest.approx(mean, abs=0.006)
    for checkpoint in report["checkpoints"]:
        expected = expected_failures(report, checkpoint)
        shown = page.eval_on_selector_all(f'.failure-block[data-checkpoint="{checkpoint}"] li',
                                          "items => items.map(i => [i.querySelector('.message').textContent, +i.dataset.count])")  # fmt: skip
        assert len(shown) == min(5, len(expected))
        for message, count in shown:
            assert expected[message] == count
        assert [count for _, count in shown] == sorted(expected.values(), reverse=True)[: len(shown)]


def test_filtering_by_stage_and_name_sorting_and_the_detail_view(opened):
    page, report, course, _, _, _ = opened
    stage = course.stages[2]
    page.select_option("#stage", stage.name)
    headings = page.eval_on_selector_all("#grid thead th[data-sort]", "ths => ths.map(t => t.dataset.sort)")
    assert headings == ["learner", *[m.checkpoint.id for m in stage.modules], "stage", "score"]
    assert page.eval_on_selector_all("#pass-rates .bar-row", "bars => bars.length") == len(stage.modules)
    page.click('#grid th[data-sort="stage"]')  # highest first
    points = page.eval_on_selector_all("#grid tbody td.stage-points", "cells => cells.map(c => +c.textContent.split('/')[0])")
    stage_ids = [m.checkpoint.id for m in stage.modules]
    expected = sorted((round(sum(l["checkpoints"][c]["points"] for c in stage_ids), 2) for l in report["learners"]), reverse=True)
    assert points == pytest.approx(expected)
    page.select_option("#stage", "")
    page.fill("#search", "learner1")
    page.click('#grid th[data-sort="learner"]')  # by name, A to Z
    shown = page.eval_on_selector_all("#grid tbody tr.row", "rows => rows.map(r => r.dataset.learner)")
    assert shown == sorted(l["learner"] for l in report["learners"] if "learner1" in l["learner"])
    assert page.text_content("#learner-count b") == str(len(shown))
    learner = next(l for l in report["learners"] if l["learner"] == shown[0])
    page.click(f'#grid tr[data-learner="{shown[0]}"] td.learner')
    assert page.text_content("#detail-score") == f"{learner['score']:g}/{learner['max_score']} points"
    assert page.eval_on_selector_all("#detail tr[data-checkpoint]", "rows => rows.length") == len(report["checkpoints"])
    page.fill("#search", "")
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert SCREENSHOT.stat().st_size > 10_000
