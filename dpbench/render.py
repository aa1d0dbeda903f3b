"""Format-agnostic tables and their renderers: markdown, LaTeX (booktabs) and HTML.

``dpbench.tables`` and ``dpbench.equal_time`` build ``Table``s; ``dpbench.tables.format_table`` picks a
renderer by name (``RENDERERS``). The CSV format is not a rendering of a ``Table`` but one tidy row per
configuration (``dpbench.tables.tidy_rows``).
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass

DAGGER = "†"  # marks a cell trained unlike the paper; LaTeX gets $^\dagger$


@dataclass
class Table:
    """A format-agnostic table: headers, rows of text cells, and the notes printed under it."""

    headers: list[str]
    rows: list[list[str]]
    notes: list[str]
    # Leading columns that are labels (left-aligned in LaTeX); None: the pivot table's rule (see render_latex).
    label_cols: int | None = None
    title: str = ""  # printed above the table in every format ("": none)


def render_md(t: Table) -> str:
    """The title in bold, a GitHub markdown table (``|`` in cells escaped), then the notes as a bullet list."""
    title = [f"**{t.title}**", ""] if t.title else []
    lines = [*title, "| " + " | ".join(t.headers) + " |", "|" + "---|" * len(t.headers)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in t.rows]
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
    "≤": r"$\leq$",
}


def _latex(text: str) -> str:
    return "".join(_LATEX_ESCAPES.get(ch, ch) for ch in text)


def render_latex(t: Table) -> str:
    """A booktabs ``tabular`` (label columns left-aligned, the rest centred; needs ``\\usepackage{booktabs}``) under
    its title in bold, then the notes as lines."""
    n_label = t.label_cols
    if n_label is None:  # the pivot table: everything before the per-task score columns is a label
        n_label = len(t.headers) - 2 * sum(1 for h in t.headers if h.endswith("success (95% CI)"))
    lines = [r"\noindent\textbf{" + _latex(t.title) + r"}\par\smallskip"] if t.title else []
    lines += [
        r"\begin{tabular}{" + "l" * n_label + "c" * (len(t.headers) - n_label) + "}",
        r"\toprule",
        " & ".join(_latex(h) for h in t.headers) + r" \\",
        r"\midrule",
    ]
    lines += [" & ".join(_latex(c) for c in row) + r" \\" for row in t.rows]
    lines += [r"\bottomrule", r"\end{tabular}", ""]
    lines += [_latex(n) + r"\\" for n in t.notes]
    return "\n".join(lines)


def render_html(t: Table) -> str:
    """An HTML ``<table>`` with the title as its caption (text escaped, non-ASCII as character references, so the
    fragment reads right in a page of any charset), then the notes as paragraphs."""

    def esc(text: str) -> str:
        return html.escape(text).encode("ascii", "xmlcharrefreplace").decode("ascii")

    caption = f"<caption>{esc(t.title)}</caption>\n" if t.title else ""
    head = "".join(f"<th>{esc(h)}</th>" for h in t.headers)
    body = "\n".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in t.rows)
    notes = "\n".join(f"<p>{esc(n)}</p>" for n in t.notes)
    return f"<table>\n{caption}<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>\n{notes}"


RENDERERS: dict[str, Callable[[Table], str]] = {"md": render_md, "latex": render_latex, "html": render_html}
