"""The paper's layout: Chi et al. 2023's Table I (state) and Table II (image) with dpbench's records in
them, and the paper's claims recomputed from those records.

``paper_layout`` puts policies in rows and the paper's task/variant columns across, each cell "ours
(paper)". ``claims`` compares, per column, Diffusion Policy with the best baseline and ranks the policies,
ours beside the paper's. Records are grouped and summarised by ``dpbench.results``; ``dpbench.render``
turns the ``Table``s into md / LaTeX / HTML; csv is one tidy row per cell.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any

from dpbench.errors import DpbenchError
from dpbench.records import PROTOCOL_VERSION
from dpbench.render import RENDERERS, Table
from dpbench.results import PAPER_POLICY_NAMES, Group, data_variant, group_records, load_reference

TABLE_OF_OBS = {"keypoints": "state", "low_dim": "state", "image": "image"}  # obs mode -> the paper's table
TABLE_TITLES = {"state": "Table I (state observations)", "image": "Table II (image observations)"}
PAPER_ROWS = ("lstm_gmm", "ibc", "bet", "diffusion_cnn", "diffusion_transformer")  # the paper's row order
BASELINES = ("lstm_gmm", "ibc", "bet")
DP_ROWS = ("diffusion_cnn", "diffusion_transformer")
ROW_LABELS = {
    "lstm_gmm": "LSTM-GMM",
    "ibc": "IBC",
    "bet": "BET",
    "diffusion_cnn": "DP-C",
    "diffusion_transformer": "DP-T",
}
TASK_LABELS = {"lift": "Lift", "can": "Can", "square": "Square", "transport": "Transport", "tool_hang": "ToolHang"}
Column = tuple[str, str]  # (task, variant): ("lift", "ph")


def paper_columns(kind: str) -> list[Column]:
    """The paper's task/variant columns of Table I (``kind`` "state") or II ("image"), in its order."""
    cols: list[Column] = []
    for ref in load_reference(kind):
        if (ref["task"], ref["variant"]) not in cols:
            cols.append((ref["task"], ref["variant"]))
    return cols


def column_label(col: Column) -> str:
    """ "Lift ph", ..., "Push-T" (the paper has one Push-T column, human demos)."""
    return "Push-T" if col[0] == "pusht" else f"{TASK_LABELS.get(col[0], col[0])} {col[1]}"


def _paper_values(kind: str) -> dict[tuple[str, Column], dict[str, Any]]:
    return {(r["policy"], (r["task"], r["variant"])): r for r in load_reference(kind)}


def _current(g: Group) -> bool:
    return all(r.get("protocol", 1) == PROTOCOL_VERSION for r in g.records)


def _newest(g: Group) -> str:
    return max(r.get("date", "") for r in g.records)


@dataclass(frozen=True)
class Cell:
    """One table cell: the chosen group of records (None: no record), how many other configurations of the
    same policy, task and variant exist on record, and the paper's numbers (None: not reported)."""

    group: Group | None
    alternatives: int
    paper: dict[str, Any] | None


def fill_cells(records: list[dict[str, Any]], kind: str) -> tuple[list[str], list[Column], dict[tuple, Cell]]:
    """The rows (the paper's policies, then any other policy on record), the columns and the cells of one table.

    A cell holds one configuration: records under today's evaluation protocol first, then the one with the
    most seeds, then the newest. ``dpbench table`` (the pivot layout) shows every configuration."""
    cols = paper_columns(kind)
    paper = _paper_values(kind)
    buckets: dict[tuple[str, Column], list[Group]] = {}
    for g in group_records(records):
        if TABLE_OF_OBS.get(g.obs) != kind:
            continue
        col = (g.env, data_variant(g.dataset_kind))
        if col not in cols:
            continue
        buckets.setdefault((PAPER_POLICY_NAMES.get(g.policy, g.policy), col), []).append(g)
    extra = sorted({row for row, _ in buckets} - set(PAPER_ROWS))
    rows = [*PAPER_ROWS, *extra]
    cells = {}
    for row in rows:
        for col in cols:
            found = sorted(buckets.get((row, col), []), key=lambda g: (_current(g), g.seeds, _newest(g)), reverse=True)
            cells[(row, col)] = Cell(found[0] if found else None, max(len(found) - 1, 0), paper.get((row, col)))
    return rows, cols, cells


def _pair(x: dict[str, Any] | None) -> str:
    return f"{x['max']:.2f} / {x['avg_last10']:.2f}" if x else "–"


def _ours(g: Group) -> str:
    spread = f"±{g.max_std:.2f}" if g.seeds > 1 else ""
    text = f"{g.max:.2f}{spread} / {g.avg_last10:.2f}"
    h = g.heldout
    held = f"; held-out {h.score:.2f} [{h.score_ci[0]:.2f}, {h.score_ci[1]:.2f}]" if h else ""
    return f"{text}; n={g.seeds}{held}"


def paper_layout(records: list[dict[str, Any]], kind: str) -> Table:
    """Table I or II in the paper's layout: each cell "ours (paper)". Ours: mean max ± std over seeds / mean
    avg-last-10, the seed count, and the held-out score of the selected checkpoints with its 95% CI."""
    rows, cols, cells = fill_cells(records, kind)
    body, sources, alternatives, older = [], [], False, False
    for row in rows:
        line = [ROW_LABELS.get(row, f"{row} (not in the paper)")]
        for col in cols:
            cell = cells[(row, col)]
            if cell.group is None:
                line.append(f"no record ({_pair(cell.paper)})" if cell.paper else "–")
                continue
            old = not _current(cell.group)
            mark = (" ᵃ" if cell.alternatives else "") + (" ᵛ" if old else "")
            alternatives |= bool(cell.alternatives)
            older |= old
            line.append(f"{_ours(cell.group)} ({_pair(cell.paper)}){mark}")
            g = cell.group
            sources.append(
                f"{line[0]} {column_label(col)}: {g.env}/{g.obs}, preset {g.preset} ({g.config_hash}), "
                f"{g.dataset_kind} dataset {g.dataset_hash[:8]}{'' if _current(g) else ', older protocol'}"
            )
        if any(c != "–" for c in line[1:]) or row in PAPER_ROWS:
            body.append(line)
    notes = [
        f"{TABLE_TITLES[kind]} of Chi et al. 2023 in its layout. Each cell: dpbench's max ± std over seeds / "
        "avg-last-10; n seeds; the held-out score of the checkpoints the max selected, on fresh test seeds, with "
        "its 95% CI; then (the paper's max / avg-last-10, 3 seeds). no record: dpbench has not run this cell.",
        "dpbench trains robomimic cells on scripted demonstrations (scripted = ph-like, scripted-mh = mh-like), "
        "not on the paper's human data, and most cells at the CPU-sized quick preset rather than the paper's: "
        "compare with care.",
        "Cells from: " + ("; ".join(sources) if sources else "none") + ".",
    ]
    if alternatives:
        notes.append(
            "ᵃ other configurations of this cell are on record; the cell shows today's protocol first, then the "
            "most seeds, then the newest. `dpbench table` lists them all."
        )
    if older:
        notes.append(
            f"ᵛ made under an older evaluation protocol than today's ({PROTOCOL_VERSION}; docs/DESIGN.md): not "
            "comparable with the other cells. Rerun the cell for a current number."
        )
    headers = ["policy", *(column_label(c) for c in cols)]
    return Table(headers, body, notes, label_cols=1)


@dataclass(frozen=True)
class ColumnClaim:
    """Diffusion Policy against the best baseline in one column, ours and the paper's. ``None`` where a side
    lacks DP or every baseline. ``ranking`` lists (policy row, max) best first; ``disagree`` the pairs of
    policies both sides report that ours orders strictly opposite to the paper."""

    col: Column
    ours: tuple[str, float, str, float] | None  # (DP row, DP max, best baseline row, its max)
    paper: tuple[str, float, str, float] | None
    ranking_ours: list[tuple[str, float]]
    ranking_paper: list[tuple[str, float]]
    disagree: list[tuple[str, str]]


def _versus(values: dict[str, float]) -> tuple[str, float, str, float] | None:
    dps = [r for r in DP_ROWS if r in values]
    bases = [r for r in BASELINES if r in values]
    if not dps or not bases:
        return None
    dp_row, base_row = max(dps, key=values.get), max(bases, key=values.get)  # a tie keeps the paper's row order
    return dp_row, values[dp_row], base_row, values[base_row]


def column_claims(records: list[dict[str, Any]], kind: str) -> list[ColumnClaim]:
    """Per column with at least one record of the paper's policies: DP (the better of DP-C and DP-T, as the
    paper's headline takes) against the best of LSTM-GMM, IBC and BET, by max; and the rankings."""
    _, cols, cells = fill_cells(records, kind)
    out = []
    for col in cols:
        ours = {r: c.group.max for (r, cc), c in cells.items() if cc == col and r in PAPER_ROWS and c.group}
        paper = {r: c.paper["max"] for (r, cc), c in cells.items() if cc == col and r in PAPER_ROWS and c.paper}
        if not ours:
            continue
        both = [r for r in PAPER_ROWS if r in ours and r in paper]
        disagree = [
            (a, b) for i, a in enumerate(both) for b in both[i + 1 :] if (ours[a] - ours[b]) * (paper[a] - paper[b]) < 0
        ]
        rank = lambda v: sorted(v.items(), key=lambda kv: -kv[1])  # noqa: E731
        out.append(ColumnClaim(col, _versus(ours), _versus(paper), rank(ours), rank(paper), disagree))
    return out


def _relative(v: tuple[str, float, str, float] | None) -> float | None:
    return None if v is None or v[3] <= 0 else (v[1] - v[3]) / v[3]


def claims_table(records: list[dict[str, Any]], kind: str) -> Table:
    """The paper's headline claim, recomputed: per column, DP's max minus the best baseline's (absolute and
    relative), ours beside the paper's, the rankings and the pairs they order differently; then the mean
    relative improvement over the columns where ours has DP and a baseline, ours against the paper's own
    numbers on the same columns and on all of its columns."""
    claims = column_claims(records, kind)
    label = lambda row: ROW_LABELS.get(row, row)  # noqa: E731

    def versus(v: tuple[str, float, str, float] | None) -> str:
        if v is None:
            return "–"
        rel = _relative(v)
        return (
            f"{label(v[0])} {v[1]:.2f} vs {label(v[2])} {v[3]:.2f}: {v[1] - v[3]:+.2f}"
            f"{f' ({rel:+.0%})' if rel is not None else ''}"
        )

    def ranking(r: list[tuple[str, float]]) -> str:
        text = ""
        for i, (p, m) in enumerate(r):  # equal scores (at the 2 decimals shown) are ties, not an order
            text += ("" if i == 0 else " = " if f"{m:.2f}" == f"{r[i - 1][1]:.2f}" else " > ") + f"{label(p)} {m:.2f}"
        return text or "–"

    body = []
    for c in claims:
        agree = "yes" if not c.disagree else "no: " + ", ".join(f"{label(a)}/{label(b)}" for a, b in c.disagree)
        row = [column_label(c.col), versus(c.ours), versus(c.paper), ranking(c.ranking_ours)]
        body.append([*row, ranking(c.ranking_paper), agree])
    shared = [(_relative(c.ours), _relative(c.paper)) for c in claims]
    shared = [(o, p) for o, p in shared if o is not None and p is not None]
    all_paper = [x for x in (_relative(v) for v in _paper_versus(kind).values()) if x is not None]
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    if shared:
        body.append(
            [
                f"mean over {len(shared)} column(s)",
                f"{mean([o for o, _ in shared]):+.1%}",
                f"{mean([p for _, p in shared]):+.1%} (all {len(all_paper)} columns: {mean(all_paper):+.1%})",
                "",
                "",
                "",
            ]
        )
    notes = [
        "DP: the better of DP-C and DP-T by max; baseline: the best of LSTM-GMM, IBC and BET by max. Relative "
        "improvement: (DP − baseline) / baseline; a column whose best baseline scores 0 has none. Ours: dpbench's "
        "cell in the paper layout above (mean max over seeds); paper: Chi et al. 2023 " + TABLE_TITLES[kind] + ".",
        "The paper's abstract reports a 46.9% average improvement over 12 tasks and 4 benchmarks, including tasks "
        "beyond Tables I/II, without stating its formula; the figure here is the same comparison made per column of "
        "this table only, on both sides.",
        "agrees: no pair of policies that both report in this column is ordered strictly the other way by ours "
        "(ties agree). The paper's 3 seeds and ours are both noisy: a gap under ~0.05 is within seed spread.",
    ]
    headers = ["column", "ours: DP vs best baseline", "paper: DP vs best baseline", "ranking (ours)"]
    return Table([*headers, "ranking (paper)", "agrees"], body, notes, label_cols=1)


def _paper_versus(kind: str) -> dict[Column, tuple[str, float, str, float] | None]:
    """The paper's own DP-vs-best-baseline comparison in every column of its table."""
    paper = _paper_values(kind)
    return {
        col: _versus({r: paper[(r, col)]["max"] for r in PAPER_ROWS if (r, col) in paper})
        for col in paper_columns(kind)
    }


def _tidy_claims(records: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    out = []
    for c in column_claims(records, kind):
        row: dict[str, Any] = {"table": kind, "task": c.col[0], "variant": c.col[1]}
        for side, v in (("ours", c.ours), ("paper", c.paper)):
            row |= {
                f"{side}_dp": v[0] if v else None,
                f"{side}_dp_max": v[1] if v else None,
                f"{side}_baseline": v[2] if v else None,
                f"{side}_baseline_max": v[3] if v else None,
                f"{side}_relative_improvement": _relative(v),
            }
        row["disagreeing_pairs"] = " ".join(f"{a}/{b}" for a, b in c.disagree)
        out.append(row)
    return out


def _csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else ["table"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue().rstrip("\n")


def _tidy(records: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    rows, cols, cells = fill_cells(records, kind)
    out = []
    for row in rows:
        for col in cols:
            c, g = cells[(row, col)], cells[(row, col)].group
            if g is None and c.paper is None:
                continue
            h = g.heldout if g else None
            out.append(
                {
                    "table": kind,
                    "policy": row,
                    "task": col[0],
                    "variant": col[1],
                    "seeds": g.seeds if g else 0,
                    "max": g.max if g else None,
                    "max_std": g.max_std if g else None,
                    "avg_last10": g.avg_last10 if g else None,
                    "heldout": h.score if h else None,
                    "heldout_ci_low": h.score_ci[0] if h else None,
                    "heldout_ci_high": h.score_ci[1] if h else None,
                    "paper_max": c.paper["max"] if c.paper else None,
                    "paper_avg_last10": c.paper["avg_last10"] if c.paper else None,
                    "preset": g.preset if g else None,
                    "dataset": g.dataset_kind if g else None,
                    "dataset_hash": g.dataset_hash if g else None,
                    "config_hash": g.config_hash if g else None,
                    "other_configs": c.alternatives,
                }
            )
    return out


def format_paper_table(records: list[dict[str, Any]], fmt: str = "md", claims: bool = False) -> str:
    """Tables I and II (each only if records of its observation kind exist) in the paper's layout, and with
    ``claims`` the claims table under each; md, latex, html, or csv (one tidy row per cell; with ``claims``,
    a blank line and one tidy row per column compared). Raises DpbenchError for an unknown format
    or when no record has an observation kind of the paper's tables."""
    kinds = [k for k in ("state", "image") if any(TABLE_OF_OBS.get(r["obs"]) == k for r in records)]
    if not kinds:
        raise DpbenchError(
            "no record fits the paper's tables (Push-T keypoints or image, robomimic low_dim or image); "
            "run one first, e.g. dpbench run --policy diffusion --env pusht"
        )
    if fmt == "csv":
        text = _csv([row for k in kinds for row in _tidy(records, k)])
        return text + ("\n\n" + _csv([row for k in kinds for row in _tidy_claims(records, k)]) if claims else "")
    if fmt not in RENDERERS:
        raise DpbenchError(f"unknown table format '{fmt}'; use one of md, csv, latex, html")
    parts = []
    for k in kinds:
        parts.append(RENDERERS[fmt](paper_layout(records, k)))
        if claims:
            parts.append(RENDERERS[fmt](claims_table(records, k)))
    return "\n\n".join(parts)


def paper_section(records: list[dict[str, Any]]) -> str:
    """results/README.md's section: the records in the paper's layout with its claims ("" when none fits)."""
    try:
        body = format_paper_table(records, "md", claims=True)
    except DpbenchError:
        return ""
    return "\n\n".join(["## In the paper's layout, with its claims (`dpbench table --layout paper --claims`)", body])
