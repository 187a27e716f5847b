"""Write a `Report` as Markdown (figures as PNG files beside it) and as one self-contained HTML file.

The HTML has inline CSS and its figures as base64 ``data:`` PNG URIs: no external URL, no
JavaScript, so it opens offline and can be mailed as one file.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

from .build import Bullets, Heading, Paragraph, Report, ReportFigure, Table

CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: #1d1d1f;
       max-width: 1100px; margin: 2em auto; padding: 0 1.5em; line-height: 1.5; }
h1 { font-size: 1.9em; border-bottom: 3px solid #1f5fa8; padding-bottom: .3em; }
h2 { font-size: 1.4em; margin-top: 2em; border-bottom: 1px solid #d0d7de; padding-bottom: .2em; }
h3 { font-size: 1.1em; margin-top: 1.5em; }
table { border-collapse: collapse; margin: 1em 0; font-size: .92em; }
th, td { border: 1px solid #d0d7de; padding: .35em .7em; vertical-align: top; }
th { background: #f3f6fa; text-align: left; }
td.r { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr:nth-child(even) td { background: #fafbfc; }
figure { margin: 1.5em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #e5e5e5; }
figcaption { font-size: .9em; color: #57606a; }
code { background: #f3f6fa; padding: .1em .3em; border-radius: 3px; font-size: .9em; }
ul { padding-left: 1.4em; }
li { margin: .25em 0; }
"""

FIGURE_DIR = "figures"


def figure_file(fig: ReportFigure) -> str:
    return f"figure-{fig.name}.png"


# ------------------------------------------------------------------ Markdown


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def to_markdown(report: Report, figure_dir: str = FIGURE_DIR) -> str:
    """The report as Markdown; figures are referenced as `figure_dir/figure-<name>.png`."""
    out = [f"# {report.title}", ""]
    for block in report.blocks:
        if isinstance(block, Heading):
            out += ["#" * block.level + " " + block.text, ""]
        elif isinstance(block, Paragraph):
            out += [block.text, ""]
        elif isinstance(block, Bullets):
            out += [f"- {item}" for item in block.items] + [""]
        elif isinstance(block, Table):
            align = block.alignment()
            out.append("| " + " | ".join(_md_cell(h) for h in block.header) + " |")
            out.append("|" + "|".join("---:" if a == "r" else "---" for a in align) + "|")
            out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
            out.append("")
        elif isinstance(block, ReportFigure):
            out += [f"![{block.title}]({figure_dir}/{figure_file(block)})", "", f"*{block.title}.* {block.caption}", ""]
    return "\n".join(out).rstrip() + "\n"


# ------------------------------------------------------------------ HTML

_BOLD = re.compile(r"\*\*(.+?)\*\*")
_CODE = re.compile(r"`([^`]+)`")


def inline(text: str) -> str:
    """Escape text for HTML, then turn **bold** and `code` into tags."""
    out = html.escape(str(text), quote=False)
    out = _CODE.sub(lambda m: f"<code>{m.group(1)}</code>", out)
    return _BOLD.sub(lambda m: f"<strong>{m.group(1)}</strong>", out)


def to_html(report: Report) -> str:
    """The report as one self-contained HTML page (inline CSS, figures as data: URIs, no script)."""
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>{html.escape(report.title)}</title>", f"<style>{CSS}</style>", "</head>", "<body>",
           f"<h1>{html.escape(report.title)}</h1>"]
    for block in report.blocks:
        if isinstance(block, Heading):
            level = min(max(block.level, 2), 6)
            out.append(f"<h{level}>{inline(block.text)}</h{level}>")
        elif isinstance(block, Paragraph):
            out.append(f"<p>{inline(block.text)}</p>")
        elif isinstance(block, Bullets):
            out.append("<ul>" + "".join(f"<li>{inline(item)}</li>" for item in block.items) + "</ul>")
        elif isinstance(block, Table):
            align = block.alignment()
            head = "".join(f"<th>{inline(h)}</th>" for h in block.header)
            rows = "".join("<tr>" + "".join(f'<td class="{align[i] if i < len(align) else "r"}">{inline(c)}</td>'
                                            for i, c in enumerate(row)) + "</tr>" for row in block.rows)
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif isinstance(block, ReportFigure):
            data = base64.b64encode(block.png).decode("ascii")
            out.append(f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(block.title)}">'
                       f"<figcaption><strong>{html.escape(block.title)}.</strong> {inline(block.caption)}</figcaption>"
                       "</figure>")
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------ files


def write_report(report: Report, out_dir: Path | str) -> dict[str, Path]:
    """Write `index.html`, `report.md` and `figures/*.png` into `out_dir` (created if needed)."""
    out = Path(out_dir)
    figures = out / FIGURE_DIR
    figures.mkdir(parents=True, exist_ok=True)
    written = {}
    for fig in report.figures:
        path = figures / figure_file(fig)
        path.write_bytes(fig.png)
        written[fig.name] = path
    md = out / "report.md"
    md.write_text(to_markdown(report), encoding="utf-8")
    page = out / "index.html"
    page.write_text(to_html(report), encoding="utf-8")
    written.update({"report.md": md, "index.html": page})
    return written


__all__ = ["CSS", "inline", "to_html", "to_markdown", "write_report"]
