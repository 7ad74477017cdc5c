"""``selfinstruct report RUN_DIR``: what a run made, what it dropped and what it cost.

Writes ``RUN_DIR/report/report.html`` (self-contained: the charts are embedded as base64
PNGs) and the PNGs next to it:

* ``counts.png``   kept and rejected rows by stage and reason;
* ``rouge.png``    each dataset instruction's highest ROUGE-L F against the seed
                   instructions (the Self-Instruct paper's Figure 3);
* ``lengths.png``  words in instructions, non-empty inputs and outputs;
* ``verbs.png``    the 20 most common root verbs and their 4 most common direct-object
                   nouns (the paper's Figure 2), by the heuristic in :mod:`.verbs`;
* ``tokens.png``   prompt and completion tokens per stage.

:mod:`.numbers` reads the run and computes the numbers, :mod:`.charts` draws them,
:mod:`.html` renders ``templates/report.html.j2``; :mod:`.stats` is ``selfinstruct stats``.
Run files are read with :func:`selfinstruct.run.files.read_rows` (a torn last line skipped).
"""

from __future__ import annotations

from pathlib import Path

from selfinstruct.report.html import REPORT_DIR, render_html, summary_text
from selfinstruct.report.numbers import Report, build_report, load_run

__all__ = ["REPORT_DIR", "Report", "build_report", "load_run", "render_html", "summary_text",
           "write_report"]  # fmt: skip


def write_report(
    run_dir: Path, *, prices: Path | None = None, samples: int = 10, seed: int = 0
) -> tuple[Report, Path]:
    """Build the report of ``run_dir`` and write ``RUN_DIR/report/`` (HTML and PNGs)."""
    from selfinstruct.datafiles import atomic_path
    from selfinstruct.report.charts import pyplot, write_charts

    pyplot()  # fail early, before reading anything, if matplotlib is missing
    report = build_report(run_dir, prices=prices, samples=samples, seed=seed)
    out_dir = run_dir / REPORT_DIR
    out_dir.mkdir(exist_ok=True)
    charts = write_charts(report, out_dir)
    html_path = out_dir / "report.html"
    with atomic_path(html_path) as tmp:
        tmp.write_text(render_html(report, charts), encoding="utf-8")
    return report, html_path
