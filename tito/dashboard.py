"""The class dashboard: `tito grade ... --html FILE` writes one self-contained HTML page.

The page carries the JSON report of `tito grade` (see tito.grade.report) and the course's stages,
and draws everything in the browser from them: a learner x checkpoint grid coloured by state, each
checkpoint's pass rate, the most common failure messages per checkpoint, a score histogram and one
learner's detail. It is sortable (click a column heading) and filterable by stage and learner name.

Nothing is fetched: the script, the styles and the data are inside the file, and its Content
Security Policy forbids any request, so the page works from an e-mail attachment or an offline
laptop. Everything shown is computed from the embedded report and nothing else, so the numbers on
the page are the report's.
"""
from __future__ import annotations

import json
from pathlib import Path

from tito.manifest import Course
from tito.results import RUN_STATUSES, Status

TEMPLATE = Path(__file__).with_name("dashboard.html")
DATA_SLOT = "/*DASHBOARD_DATA*/null"

# Each status of a graded cell (tito.views.GRADE_ICONS names them all): its colour and a mark drawn from the
# fonts every system has (colour emoji are missing from many, headless browsers included).
STYLES = {
    Status.PASSED: ("#2e9d57", "✓"), Status.FAILED: ("#d64545", "✗"), Status.TIMEOUT: ("#e8912d", "◷"),
    Status.ERROR: ("#8e44ad", "!"), Status.LOCKED: ("#b9bec7", "–"), Status.MISSING: ("#eef0f3", "∅"),
    Status.SYNTAX_ERROR: ("#7b1e1e", "✖"),
}  # fmt: skip
# Statuses whose failed tests or note say what went wrong, listed as failures; locked and missing do not.
FAILURES = (RUN_STATUSES - {Status.PASSED}) | {Status.SYNTAX_ERROR}


def page_data(report: dict, course: Course) -> dict:
    """What the page needs: the report itself, and each reported checkpoint's name and stage."""
    from tito.views import GRADE_ICONS

    reported = set(report["checkpoints"])
    checkpoints = [
        {"id": c.id, "name": c.name, "capability": c.capability, "stage": course.module_of(c).stage}
        for c in course.checkpoints if c.id in reported
    ]  # fmt: skip
    stages = [s.name for s in course.stages if any(c["stage"] == s.name for c in checkpoints)]
    statuses = [{"status": s.value, "colour": STYLES[s][0], "mark": STYLES[s][1], "failure": s in FAILURES} for s in GRADE_ICONS]
    return {"report": report, "checkpoints": checkpoints, "stages": stages, "statuses": statuses}


def render(report: dict, course: Course) -> str:
    """The page as text. The data goes into a <script> element, so `</` is escaped to keep a
    learner's failure message from closing it."""
    data = json.dumps(page_data(report, course), ensure_ascii=False, sort_keys=True).replace("</", "<\\/")
    template = TEMPLATE.read_text(encoding="utf-8")
    assert template.count(DATA_SLOT) == 1, f"{TEMPLATE.name} must hold {DATA_SLOT} exactly once"
    return template.replace(DATA_SLOT, data)


def write(path: Path, report: dict, course: Course) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(report, course), encoding="utf-8")
