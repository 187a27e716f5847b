"""The SLA budget report: what a deployment policy costs in downtime, breaches and credits, where the
budget goes, the policy in words, DORA's four keys, and the settings that would change the picture most.

`make_report` runs it all; `build_report` builds it from results already computed; `write_report`
writes `index.html` (one self-contained file) and `report.md` (with PNG figures beside it).
"""

from .build import Report, ReportFigure, build_report, make_report, sla_table
from .render import to_html, to_markdown, write_report
from .sensitivity import Sensitivity, sensitivity

__all__ = ["Report", "ReportFigure", "Sensitivity", "build_report", "make_report", "sensitivity", "sla_table",
           "to_html", "to_markdown", "write_report"]
