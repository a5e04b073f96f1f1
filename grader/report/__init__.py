"""Reports: SubmissionResults (or their JSON) as HTML, a class index, grades.csv, Gradescope results.json."""

from grader.report.gradescope import results_json
from grader.report.html import render_index, render_report
from grader.report.tables import grades_csv
from grader.report.writer import report_names, write_class_outputs, write_outputs

__all__ = [
    "grades_csv",
    "render_index",
    "render_report",
    "report_names",
    "results_json",
    "write_class_outputs",
    "write_outputs",
]
