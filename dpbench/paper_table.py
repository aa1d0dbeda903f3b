"""The paper's layout: Chi et al. 2023's Table I (state) and Table II (image) with dpbench's records in
them, and the paper's claims recomputed from those records.

``paper_layout`` puts policies in rows and the paper's task/variant columns across, each cell "ours
(paper)". ``claims_table`` compares, per column, Diffusion Policy with the best baseline and ranks the
policies, ours beside the paper's. Which records fill a cell: ``dpbench.paper_cells``; ``dpbench.render``
turns the ``Table``s into md / LaTeX / HTML; csv is one tidy row per cell (or per claim).
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from dpbench.errors import DpbenchError
from dpbench.paper_cells import (
    BASELINES,
    DP_ROWS,
    PAPER_CAVEATS,
    PAPER_ROWS,
    ROW_LABELS,
    TABLE_OF_OBS,
    TABLE_TITLES,
    Column,
    column_label,
    current,
    fill_cells,
    off_schedule,
    paper_actions,
    paper_columns,
    paper_values,
)
from dpbench.records import PROTOCOL_VERSION
from dpbench.render import RENDERERS, Table
from dpbench.results import Group, short_hash


def _pair(x: dict[str, Any] | None) -> str:
    return f"{x['max']:.2f} / {x['avg_last10']:.2f}" if x else "–"


def _ours(g: Group) -> str:
    spread = f"±{g.max_std:.2f}" if g.seeds > 1 else ""
    text = f"{g.max:.2f}{spread} / {g.avg_last10:.2f}"
    h = g.heldout
    held = f"; held-out {h.score:.2f} [{h.score_ci[0]:.2f}, {h.score_ci[1]:.2f}]" if h else ""
    return f"{text}; n={g.seeds}{held}"


def paper_layout(records: list[dict[str, Any]], kind: str, envs: list[str] | None = None) -> Table:
    """Table I or II in the paper's layout: each cell "ours (paper)". Ours: mean max ± std over seeds / mean
    avg-last-10, the seed count, and the held-out score of the selected checkpoints with its 95% CI.
    ``envs``: only these tasks' columns."""
    rows, cols, cells = fill_cells(records, kind, envs)
    body, sources, alternatives, older, actions, schedule, heldout = [], [], False, False, False, False, False
    presets: Counter[str] = Counter()
    caveats: list[str] = []
    for row in rows:
        line = [ROW_LABELS.get(row, f"{row} (not in the paper)")]
        for col in cols:
            cell = cells[(row, col)]
            caveat = PAPER_CAVEATS.get((kind, row, col))
            if caveat and cell.paper:
                caveats.append(f"{line[0]} {column_label(col)}: {caveat}")
            if cell.group is None:
                line.append(f"no record ({_pair(cell.paper)}){' ⁱ' if caveat else ''}" if cell.paper else "–")
                continue
            old, other_actions = not current(cell.group), not paper_actions(row, cell.group)
            off = off_schedule(cell.group)
            mark = (
                (" ᵃ" if cell.alternatives else "")
                + (" ᵛ" if old else "")
                + (" ᵈ" if other_actions else "")
                + (" ˢ" if off else "")
                + (" ⁱ" if caveat else "")
            )
            alternatives |= bool(cell.alternatives)
            older |= old
            actions |= other_actions
            schedule |= off
            presets[cell.group.preset] += 1
            heldout |= cell.group.heldout is not None
            line.append(f"{_ours(cell.group)} ({_pair(cell.paper)}){mark}")
            g = cell.group
            sources.append(
                f"{line[0]} {column_label(col)}: {g.env}/{g.obs}, preset {g.preset} ({g.config_hash}), "
                f"{g.dataset_kind} dataset {short_hash(g.dataset_hash)}{'' if current(g) else ', older protocol'}"
            )
        if any(c != "–" for c in line[1:]):  # rows the paper's table lacks (BET in Table II) and we never ran
            body.append(line)
    held = (
        "; where recorded, the held-out score of the checkpoints the max selected, on fresh test seeds, with a 95% "
        "CI over all seeds' episodes pooled (episode noise, not the spread over seeds)"
        if heldout
        else ""
    )
    at = ", ".join(f"{n} at {p}" for p, n in presets.most_common())
    notes = [
        f"{TABLE_TITLES[kind]} of Chi et al. 2023 in its layout. Each cell: dpbench's max ± std over seeds / "
        f"avg-last-10; n seeds{held}; then (the paper's max / avg-last-10, 3 seeds). no record: no record among "
        "those read (all of them, or the --env/--policy/--obs selection).",
        "dpbench trains robomimic cells on scripted demonstrations (scripted = ph-like, scripted-mh = mh-like), "
        f"not on the paper's human data. Presets of the cells shown: {at or 'none'} (quick: CPU-sized, far "
        "shorter than the paper's training): compare with care.",
        "Cells from: " + ("; ".join(sources) if sources else "none") + ".",
    ]
    if alternatives:
        notes.append(
            "ᵃ other configurations of this cell are on record; the cell shows, in this order of preference, the "
            "paper's action space for the policy (DP absolute, the baselines delta), today's protocol, its preset "
            "as defined today, the most seeds, the newest. dpbench table (the pivot layout) lists them all."
        )
    if older:
        notes.append(
            f"ᵛ made under an older evaluation protocol than today's ({PROTOCOL_VERSION}; docs/DESIGN.md): not "
            "comparable with the other cells. Rerun the cell for a current number."
        )
    if actions:
        notes.append(
            "ᵈ trained in another action space than the paper's for this policy (DP: absolute; LSTM-GMM, IBC, "
            "BET: delta): no record in the paper's action space exists for this cell."
        )
    if caveats:
        notes.append("ⁱ the paper's number was made another way: " + "; ".join(caveats) + ".")
    if schedule:
        notes.append(
            "ˢ not its preset as defined today: a field that shapes the scores differs from the preset (the "
            "schedule, the model, the optimizer; dpbench table, the pivot layout, lists how), so its max and "
            "avg-last-10 are another experiment's, and the claims leave the cell out."
        )
    headers = ["policy", *(column_label(c) for c in cols)]
    return Table(headers, body, notes, label_cols=1)


@dataclass(frozen=True)
class ColumnClaim:
    """Diffusion Policy against the best baseline in one column, ours and the paper's. ``None`` where a side
    lacks DP or every baseline. ``ranking`` lists (policy row, max) best first; ``compared`` how many
    policies both sides report; ``disagree`` the pairs of those that ours orders opposite to the paper by
    more than ``SEED_NOISE`` ("order"), or that the paper ties (within 0.005) and ours separates by more
    than ``SEED_NOISE`` ("tie"); ``within_noise`` the pairs ours orders opposite by less (shown, not counted:
    the same margin both ways). ``paper_same``: the paper's comparison over only the policies ours has in the
    column (like for like); ``seeds``: ours per policy row."""

    col: Column
    ours: tuple[str, float, str, float] | None  # (DP row, DP max, best baseline row, its max)
    paper: tuple[str, float, str, float] | None
    ranking_ours: list[tuple[str, float]]
    ranking_paper: list[tuple[str, float]]
    compared: int
    disagree: list[tuple[str, str, str]]
    paper_same: tuple[str, float, str, float] | None = None
    seeds: dict[str, int] | None = None
    within_noise: list[tuple[str, str]] = field(default_factory=list)


SEED_NOISE = 0.05  # a gap in max smaller than this is within the seed spread of 3-seed means (Push-T: ~0.02-0.05)


def _versus(values: dict[str, float]) -> tuple[str, float, str, float] | None:
    dps = [r for r in DP_ROWS if r in values]
    bases = [r for r in BASELINES if r in values]
    if not dps or not bases:
        return None
    dp_row, base_row = max(dps, key=values.get), max(bases, key=values.get)  # a tie keeps the paper's row order
    return dp_row, values[dp_row], base_row, values[base_row]


def column_claims(records: list[dict[str, Any]], kind: str, envs: list[str] | None = None) -> list[ColumnClaim]:
    """Per column with at least one comparable record of the paper's policies: DP (the better of DP-C and DP-T,
    as the paper's headline takes) against the best of LSTM-GMM, IBC and BET, by max; and the rankings.
    Comparable: today's protocol, the preset as defined today (``paper_cells.off_schedule``) and the paper's
    action space for the policy; other cells are left out."""
    _, cols, cells = fill_cells(records, kind, envs)
    out = []
    for col in cols:
        usable = {
            r: c.group
            for (r, cc), c in cells.items()
            if cc == col
            and r in PAPER_ROWS
            and c.group
            and current(c.group)
            and paper_actions(r, c.group)
            and not off_schedule(c.group)
        }
        ours = {r: g.max for r, g in usable.items()}
        paper = {r: c.paper["max"] for (r, cc), c in cells.items() if cc == col and r in PAPER_ROWS and c.paper}
        if not ours:
            continue
        both = [r for r in PAPER_ROWS if r in ours and r in paper]
        disagree, noise = [], []
        for i, a in enumerate(both):
            for b in both[i + 1 :]:
                d_ours, d_paper = ours[a] - ours[b], paper[a] - paper[b]
                if d_ours * d_paper < 0:  # the same margin as for a tie: a reversal inside the seed spread is noise
                    (disagree.append((a, b, "order")) if abs(d_ours) > SEED_NOISE else noise.append((a, b)))
                elif abs(d_paper) < 0.005 and abs(d_ours) > SEED_NOISE:
                    disagree.append((a, b, "tie"))
        rank = lambda v: sorted(v.items(), key=lambda kv: -kv[1])  # noqa: E731
        same = _versus({r: m for r, m in paper.items() if r in ours})
        seeds = {r: g.seeds for r, g in usable.items()}
        out.append(
            ColumnClaim(
                col, _versus(ours), _versus(paper), rank(ours), rank(paper), len(both), disagree, same, seeds, noise
            )
        )
    return out


def _relative(v: tuple[str, float, str, float] | None) -> float | None:
    return None if v is None or v[3] <= 0 else (v[1] - v[3]) / v[3]


def claims_table(records: list[dict[str, Any]], kind: str, envs: list[str] | None = None, selection: str = "") -> Table:
    """The paper's headline claim, recomputed: per column, DP's max minus the best baseline's (absolute and
    relative), ours beside the paper's, the rankings and the pairs they order differently; then the mean
    relative improvement over the columns where ours has DP and a baseline, ours against the paper's own
    numbers on the same columns and on all of its columns. ``selection``: the --env/--policy/--obs filter applied
    to ``records``, named in the notes because it changes which baseline is best."""
    claims = column_claims(records, kind, envs)
    label = lambda row: ROW_LABELS.get(row, row)  # noqa: E731

    def versus(v: tuple[str, float, str, float] | None, seeds: dict[str, int] | None = None) -> str:
        if v is None:
            return "–"
        rel = _relative(v)
        n = lambda row: f" (n={seeds[row]})" if seeds and seeds.get(row, 3) < 3 else ""  # noqa: E731
        return (
            f"{label(v[0])} {v[1]:.2f}{n(v[0])} vs {label(v[2])} {v[3]:.2f}{n(v[2])}: {v[1] - v[3]:+.2f}"
            f"{f' ({rel:+.0%})' if rel is not None else ''}"
        )

    def ranking(r: list[tuple[str, float]], seeds: dict[str, int] | None = None) -> str:
        text = ""
        for i, (p, m) in enumerate(r):  # equal scores (at the 2 decimals shown) are ties, not an order
            n = f" (n={seeds[p]})" if seeds and seeds.get(p, 3) < 3 else ""
            text += (
                "" if i == 0 else " = " if f"{m:.2f}" == f"{r[i - 1][1]:.2f}" else " > "
            ) + f"{label(p)} {m:.2f}{n}"
        return text or "–"

    body = []
    for c in claims:
        pairs = [f"{label(a)}/{label(b)}{' (paper: tie)' if how == 'tie' else ''}" for a, b, how in c.disagree]
        agree = "– (fewer than 2 policies)" if c.compared < 2 else "no: " + ", ".join(pairs) if pairs else "yes"
        if c.within_noise and c.compared >= 2:
            agree += f"{'; ' if pairs else ' '}(reversed within {SEED_NOISE}: "
            agree += ", ".join(f"{label(a)}/{label(b)}" for a, b in c.within_noise) + ")"
        row = [column_label(c.col), versus(c.ours, c.seeds), versus(c.paper_same), versus(c.paper)]
        body.append([*row, ranking(c.ranking_ours, c.seeds), ranking(c.ranking_paper), agree])
    marked = any("(n=" in row[1] for row in body)  # versus() marked a policy with fewer than 3 seeds
    shared = [(_relative(c.ours), _relative(c.paper_same), _relative(c.paper)) for c in claims]
    shared = [x for x in shared if x[0] is not None and x[2] is not None]
    alike = [s for o, s, _ in shared if s is not None]
    all_paper = [x for x in (_relative(v) for v in _paper_versus(kind).values()) if x is not None]
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    if shared:
        body.append(
            [
                f"mean over {len(shared)} column(s)",
                f"{mean([o for o, _, _ in shared]):+.1%}",
                f"{mean(alike):+.1%}" + (f" ({len(alike)} columns)" if len(alike) != len(shared) else "")
                if alike
                else "–",
                f"{mean([p for _, _, p in shared]):+.1%} (all {len(all_paper)} columns: {mean(all_paper):+.1%})",
                "",
                "",
                "",
            ]
        )
    notes = [
        "DP: the better of DP-C and DP-T by max; baseline: the best of LSTM-GMM, IBC and BET by max. Relative "
        "improvement: (DP - baseline) / baseline; a column whose best baseline scores 0 has none. Ours: dpbench's "
        "cell in the paper layout above (mean max over seeds), only cells under today's protocol and their "
        "preset's schedule in the paper's action space; paper: Chi et al. 2023 "
        + TABLE_TITLES[kind]
        + "."
        + (" (n=k): ours has fewer than the paper's 3 seeds of that policy." if marked else ""),
        "paper, same policies: the paper's comparison over the same set of policies ours has in that column (its best "
        "DP and best baseline among them, which can be another pair than ours picks); where ours lacks the paper's "
        "best DP or best baseline, the paper's headline compares policies ours does not have.",
        "The paper's abstract reports a 46.9% average improvement over 12 tasks and 4 benchmarks, including tasks "
        "beyond Tables I/II, without stating its formula; the figure here is the same comparison made per column of "
        "this table only, on both sides.",
        "agrees: over the policies both sides report in this column, no pair that ours orders the other way, and no "
        f"pair the paper ties that ours separates, by more than {SEED_NOISE} (about the seed spread of a 3-seed "
        "mean; a reversal within it is listed, not counted); needs 2 policies.",
        "Ours is not a replication: robomimic columns train on dpbench's scripted demonstrations, not robomimic's "
        "human ones; each policy trains for its quick preset's budget (not equal across policies); max is taken "
        "over 11 evaluations, not the original's 100 or more (docs/baselines_vs_original.md). Read 'agrees' and the "
        "means as a check of the paper's ordering under these conditions.",
    ]
    if not claims:
        notes.insert(
            0,
            "No column qualifies: no cell of the paper's policies here is under today's protocol, on its preset's "
            "schedule and in the paper's action space for the policy (ᵛ and ˢ above mark cells that are not).",
        )
    caveats = [
        f"{ROW_LABELS.get(row, row)} {column_label(col)}: {why}"
        for (k, row, col), why in PAPER_CAVEATS.items()
        if k == kind and any(c.col == col for c in claims)
    ]
    if caveats:
        notes.append("The paper's side includes a number made another way than ours: " + "; ".join(caveats) + ".")
    if selection:
        notes.append(f"Computed over the selected records only ({selection}): the best baseline is among those.")
    headers = ["column", "ours: DP vs best baseline", "paper, same policies", "paper: DP vs best baseline"]
    return Table([*headers, "ranking (ours)", "ranking (paper)", "agrees"], body, notes, label_cols=1)


def _paper_versus(kind: str) -> dict[Column, tuple[str, float, str, float] | None]:
    """The paper's own DP-vs-best-baseline comparison in every column of its table."""
    paper = paper_values(kind)
    return {
        col: _versus({r: paper[(r, col)]["max"] for r in PAPER_ROWS if (r, col) in paper})
        for col in paper_columns(kind)
    }


def _tidy_claims(records: list[dict[str, Any]], kind: str, envs: list[str] | None) -> list[dict[str, Any]]:
    out = []
    for c in column_claims(records, kind, envs):
        row: dict[str, Any] = {"table": kind, "task": c.col[0], "variant": c.col[1]}
        for side, v in (("ours", c.ours), ("paper_same_policies", c.paper_same), ("paper", c.paper)):
            row |= {
                f"{side}_dp": v[0] if v else None,
                f"{side}_dp_max": v[1] if v else None,
                f"{side}_baseline": v[2] if v else None,
                f"{side}_baseline_max": v[3] if v else None,
                f"{side}_relative_improvement": _relative(v),
            }
        row["ours_dp_seeds"] = c.seeds.get(c.ours[0]) if c.ours and c.seeds else None
        row["ours_baseline_seeds"] = c.seeds.get(c.ours[2]) if c.ours and c.seeds else None
        row["policies_compared"] = c.compared
        row["disagreeing_pairs"] = " ".join(
            f"{a}/{b}{'(paper-tie)' if how == 'tie' else ''}" for a, b, how in c.disagree
        )
        row["reversed_within_noise"] = " ".join(f"{a}/{b}" for a, b in c.within_noise)
        out.append(row)
    return out


def _csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else ["table"], lineterminator="\n")
    writer.writeheader()
    # 4 decimals: a mean of maxes over seeds prints as 0.9, not 0.8999999999999999
    writer.writerows({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()} for row in rows)
    return buf.getvalue().rstrip("\n")


def _tidy(records: list[dict[str, Any]], kind: str, envs: list[str] | None) -> list[dict[str, Any]]:
    rows, cols, cells = fill_cells(records, kind, envs)
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
                    "current_protocol": current(g) if g else None,
                    "paper_action_space": paper_actions(row, g) if g else None,
                    "preset_schedule": not off_schedule(g) if g else None,
                    "other_configs": c.alternatives,
                    "paper_caveat": PAPER_CAVEATS.get((kind, row, col), ""),
                }
            )
    return out


def format_paper_table(
    records: list[dict[str, Any]],
    fmt: str = "md",
    claims: bool = False,
    envs: list[str] | None = None,
    selection: str = "",
) -> str:
    """Tables I and II (each only if records of its observation kind exist) in the paper's layout, and with
    ``claims`` the claims table under each; md, latex, html, or csv (one tidy row per cell; with ``claims``,
    one tidy row per column compared instead). ``envs``: only these tasks' columns; ``selection``: the
    filter that chose ``records``, named under the claims. Raises DpbenchError for an unknown format or
    when no record has an observation kind of the paper's tables."""
    kinds = [k for k in ("state", "image") if any(TABLE_OF_OBS.get(r["obs"]) == k for r in records)]
    if not kinds:
        raise DpbenchError(
            "no record fits the paper's tables (Push-T keypoints or image, robomimic low_dim or image); "
            "run one first, e.g. dpbench run --policy diffusion --env pusht"
        )
    if fmt == "csv":
        tidy = _tidy_claims if claims else _tidy
        return _csv([row for k in kinds for row in tidy(records, k, envs)])
    if fmt not in RENDERERS:
        raise DpbenchError(f"unknown table format '{fmt}'; use one of md, csv, latex, html")
    parts = []
    for k in kinds:
        if fmt == "md":
            parts.append(f"**{TABLE_TITLES[k]}**")
        parts.append(RENDERERS[fmt](paper_layout(records, k, envs)))
        if claims:
            if fmt == "md":
                parts.append(f"**{TABLE_TITLES[k]}: the paper's claims, recomputed**")
            parts.append(RENDERERS[fmt](claims_table(records, k, envs, selection)))
    return "\n\n".join(parts)


def paper_section(records: list[dict[str, Any]]) -> str:
    """results/README.md's section: the records in the paper's layout with its claims ("" when none fits)."""
    try:
        body = format_paper_table(records, "md", claims=True)
    except DpbenchError:
        return ""
    return "\n\n".join(["## In the paper's layout, with its claims (`dpbench table --layout paper --claims`)", body])
