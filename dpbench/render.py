"""Format-agnostic tables and their renderers: markdown, LaTeX (booktabs) and HTML.

``dpbench.tables`` and ``dpbench.equal_time`` build ``Table``s; ``dpbench.tables.format_table`` picks a
renderer by name (``RENDERERS``). The CSV format is not a rendering of a ``Table`` but tidy rows (one per
configuration, cell or claim), written by ``tidy_csv``.
"""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

DAGGER = "†"  # marks a cell trained unlike the paper; LaTeX gets $^\dagger$

Cell = str | tuple[str, ...]
"""A table cell: its text, or its lines. md and HTML join the lines with a space, so a cell reads the same
in one line; LaTeX stacks them, so a wide table can fit a page."""


def mean_std(mean: float, std: float, n: int) -> str:
    """``mean ± std`` over ``n`` seeds to 3 decimals; the mean alone for one seed (a sample std needs two)."""
    return f"{mean:.3f}" if n < 2 else f"{mean:.3f} ± {std:.3f}"


def cell_text(cell: Cell) -> str:
    """The cell in one line: its lines joined with a space."""
    return cell if isinstance(cell, str) else " ".join(cell)


@dataclass
class Table:
    """A format-agnostic table: headers, rows of text cells, and the notes printed under it."""

    headers: list[str]
    rows: list[list[Cell]]
    notes: list[str]
    label_cols: int = 1  # leading columns that are labels (left-aligned in LaTeX; the rest are centred)
    title: str = ""  # printed above the table in every format ("": none)
    # LaTeX: scale the tabular to the line width (\resizebox, needs graphicx); for tables wider than a page.
    fit_width: bool = False


def render_md(t: Table) -> str:
    """The title in bold, a GitHub markdown table (``|`` in cells escaped), then the notes as a bullet list."""
    title = [f"**{t.title}**", ""] if t.title else []
    lines = [*title, "| " + " | ".join(t.headers) + " |", "|" + "---|" * len(t.headers)]
    lines += ["| " + " | ".join(cell_text(c).replace("|", "\\|") for c in row) + " |" for row in t.rows]
    return "\n".join([*lines, "", *(f"- {n}" for n in t.notes)])


_LATEX_ESCAPES = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "#": r"\#",
    "_": r"\_",
    "$": r"\$",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "±": r"$\pm$",
    DAGGER: r"$^\dagger$",
    "–": "--",
    "−": "$-$",
    ">": r"\textgreater{}",
    "<": r"\textless{}",
    "`": "",
    "ᵃ": r"$^{a}$",
    "ᵈ": r"$^{d}$",
    "ᵉ": r"$^{e}$",
    "ˡ": r"$^{l}$",
    "ᵛ": r"$^{v}$",
    "ˢ": r"$^{s}$",
    "ⁱ": r"$^{i}$",
    "ʳ": r"$^{r}$",
    "↗": r"$\nearrow$",
    "≤": r"$\leq$",
}


def _latex(text: str) -> str:
    # "--" would set as an en dash: an option such as --obs keeps its two hyphens when each is closed by {}
    nxt = text[1:] + " "
    return "".join(_LATEX_ESCAPES.get(ch, ch) + ("{}" if ch == nxt[i] == "-" else "") for i, ch in enumerate(text))


def _latex_cell(cell: Cell, align: str) -> str:
    if isinstance(cell, str) or len(cell) == 1:
        return _latex(cell_text(cell))
    # A nested one-column tabular stacks the lines (plain LaTeX: no makecell package needed). The {} after
    # each \\ stops it from reading a line that starts with "[" (a CI) as its optional [length].
    return rf"\begin{{tabular}}{{@{{}}{align}@{{}}}}" + r"\\{} ".join(_latex(x) for x in cell) + r"\end{tabular}"


def render_latex(t: Table) -> str:
    """A booktabs ``tabular`` (label columns left-aligned, the rest centred; needs ``\\usepackage{booktabs}``) under
    its title in bold, then the notes as small ragged-right paragraphs. A cell's lines are stacked; a ``fit_width``
    table is scaled to the line width (``\\resizebox``, needs ``\\usepackage{graphicx}``)."""
    n_label = t.label_cols
    lines = [r"\noindent\textbf{" + _latex(t.title) + r"}\par\smallskip"] if t.title else []
    lines += [r"\noindent\resizebox{\linewidth}{!}{%"] if t.fit_width else []
    lines += [
        r"\begin{tabular}{" + "l" * n_label + "c" * (len(t.headers) - n_label) + "}",
        r"\toprule",
        " & ".join(_latex(h) for h in t.headers) + r" \\",
        r"\midrule",
    ]
    rows = [
        " & ".join(_latex_cell(c, "l" if i < n_label else "c") for i, c in enumerate(row)) + r" \\" for row in t.rows
    ]
    # stacked cells would touch the next row's: a little space between rows keeps them apart
    gap = r" \addlinespace" if any(not isinstance(c, str) and len(c) > 1 for row in t.rows for c in row) else ""
    lines += [row + gap for row in rows[:-1]] + rows[-1:]
    lines += [r"\bottomrule", r"\end{tabular}" + ("}" if t.fit_width else ""), ""]
    # ragged-right: a justified line cannot stretch around the notes' long unbreakable names and hashes
    lines += [r"{\small\raggedright", *(_latex(n) + r"\par" for n in t.notes), "}"] if t.notes else []
    return "\n".join(lines)


def render_html(t: Table) -> str:
    """An HTML ``<table>`` with the title as its caption (text escaped, non-ASCII as character references, so the
    fragment reads right in a page of any charset), then the notes as paragraphs."""

    def esc(text: str) -> str:
        return html.escape(text).encode("ascii", "xmlcharrefreplace").decode("ascii")

    caption = f"<caption>{esc(t.title)}</caption>\n" if t.title else ""
    head = "".join(f"<th>{esc(h)}</th>" for h in t.headers)
    body = "\n".join("<tr>" + "".join(f"<td>{esc(cell_text(c))}</td>" for c in row) + "</tr>" for row in t.rows)
    notes = "\n".join(f"<p>{esc(n)}</p>" for n in t.notes)
    return f"<table>\n{caption}<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>\n{notes}"


RENDERERS: dict[str, Callable[[Table], str]] = {"md": render_md, "latex": render_latex, "html": render_html}


def tidy_csv(rows: list[dict[str, Any]], empty_header: str) -> str:
    """Tidy rows as CSV, the first row's keys as the header (``empty_header`` alone when there is no row); later
    rows may leave fields out (written empty). Floats are rounded to 4 decimals: a mean of maxes over seeds
    prints as 0.9, not 0.8999999999999999."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else [empty_header], lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()} for row in rows)
    return buf.getvalue().rstrip("\n")
