"""The paper's layout: Chi et al. 2023's Table I (state) and Table II (image) with dpbench's records in
them, and the paper's claims recomputed from those records.

``paper_layout`` puts policies in rows and the paper's task/variant columns across, each cell "ours
(paper)"; ``format_paper_table`` adds the claims (``dpbench.paper_claims``: per column, Diffusion Policy
against the best baseline and the rankings, ours beside the paper's). Which records fill a cell:
``dpbench.paper_cells``; ``dpbench.render`` turns the ``Table``s into md / LaTeX / HTML; csv is one tidy
row per cell (or per claim).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from dpbench.errors import DpbenchError
from dpbench.metrics import LATE_TREND_RULE
from dpbench.paper_cells import (
    PAPER_CAVEATS,
    PAPER_ROWS,
    ROW_LABELS,
    TABLE_OF_OBS,
    TABLE_TITLES,
    ColumnFilter,
    column_label,
    current,
    fill_cells,
    off_schedule,
    paper_actions,
)
from dpbench.paper_claims import claims_table, tidy_claims
from dpbench.records import PROTOCOL_VERSION, RECOLLECTED
from dpbench.render import RENDERERS, Cell, Table, cell_text, tidy_csv
from dpbench.results import PAPER_POLICY_NAMES, Group, late_trend_fields, short_hash


def _pair(x: dict[str, Any] | None) -> str:
    return f"{x['max']:.2f} / {x['avg_last10']:.2f}" if x else "–"


def _ours(g: Group) -> tuple[str, ...]:
    """Ours as lines, which join with spaces into "max ± std / avg-last-10; n=N; held-out S [lo, hi]" (no
    held-out part where none is recorded); short lines keep the paper's ten columns narrow in LaTeX."""
    spread = f"±{g.max_std:.2f}" if g.seeds > 1 else ""
    first = f"{g.max:.2f}{spread} / {g.avg_last10:.2f}{g.last_evals};"
    h = g.heldout
    if h is None:
        return (first, f"n={g.seeds}")
    return (first, f"n={g.seeds}; held-out {h.score:.2f}", f"[{h.score_ci[0]:.2f}, {h.score_ci[1]:.2f}]")


def paper_layout(
    records: list[dict[str, Any]], kind: str, envs: ColumnFilter | None = None, policies: list[str] | None = None
) -> Table:
    """Table I or II in the paper's layout: each cell "ours (paper)". Ours: mean max ± std over seeds / mean
    avg-last-10, the seed count, and the held-out score of the selected checkpoints with its 95% CI.
    ``envs``: only these tasks' columns (or these (task, variant) columns); ``policies``: the names records carry
    of the --policy selection that chose ``records`` (``policies.record_policy_names``; None: all), whose other rows
    say "not selected" rather than "no record"."""
    selected = None if policies is None else {PAPER_POLICY_NAMES.get(p, p) for p in policies}
    rows, cols, cells = fill_cells(records, kind, envs)
    body: list[list[Cell]] = []
    sources, alternatives, older, actions, schedule, heldout, few = [], False, False, False, False, False, False
    pooled = False  # a cell whose seeds trained on separate collections of one scripted recipe
    rising: list[str] = []  # cells still improving when their budget ended
    presets: Counter[str] = Counter()
    caveats: list[str] = []
    shown: set[str] = set()  # the rows printed
    for row in rows:
        label: Cell = ROW_LABELS.get(row) or (row, "(not in the paper)")  # LaTeX stacks a cell's lines
        name = cell_text(label)
        line: list[Cell] = [label]
        for col in cols:
            cell = cells[(row, col)]
            caveat = PAPER_CAVEATS.get((kind, row, col))
            if caveat and cell.paper:
                caveats.append(f"{name} {column_label(col)}: {caveat}")
            if cell.group is None:
                empty = "no record" if selected is None or row in selected else "not selected"
                line.append((empty, f"({_pair(cell.paper)}){' ⁱ' if caveat else ''}") if cell.paper else "–")
                continue
            old, other_actions = not current(cell.group), not paper_actions(row, cell.group)
            off = off_schedule(cell.group)
            recollected = "+" in cell.group.dataset_hash
            trend = cell.group.late_trend
            mark = (
                (" ᵃ" if cell.alternatives else "")
                + (" ᵛ" if old else "")
                + (" ᵈ" if other_actions else "")
                + (" ˢ" if off else "")
                + (" ʳ" if recollected else "")
                + (" ↗" if trend and trend.rising else "")
                + (" ⁱ" if caveat else "")
            )
            pooled |= recollected
            if trend and trend.rising:
                rising.append(f"{name} {column_label(col)} +{trend.rise:.2f}")
            alternatives |= bool(cell.alternatives)
            older |= old
            actions |= other_actions
            schedule |= off
            presets[cell.group.preset] += 1
            heldout |= cell.group.heldout is not None
            few |= bool(cell.group.last_evals)
            line.append((*_ours(cell.group), f"({_pair(cell.paper)}){mark}"))
            g = cell.group
            sources.append(
                f"{name} {column_label(col)}: {g.env}/{g.obs}, preset {g.preset} ({g.config_hash}), "
                f"{g.dataset_kind} dataset {short_hash(g.dataset_hash)}{'' if current(g) else ', older protocol'}"
            )
        if any(c != "–" for c in line[1:]):  # rows the paper's table lacks (BET in Table II) and we never ran
            body.append(line)
            shown.add(row)
    held = (
        "; where recorded, the held-out score of the checkpoints the max selected, on fresh test seeds, with a 95% "
        "CI over all seeds' episodes pooled (Wilson where every episode scores 0 or 1, as success does; normal "
        "otherwise, as Push-T's coverage; episode noise, not the spread over seeds)"
        if heldout
        else ""
    )
    at = ", ".join(f"{n} at {p}" for p, n in presets.most_common())
    notes = [
        f"{TABLE_TITLES[kind]} of Chi et al. 2023 in its layout. Each cell: dpbench's max ± std over seeds / "
        f"avg-last-10; n seeds{held}; then (the paper's max / avg-last-10, 3 seeds). no record: no record among "
        "those read (all of them, or the --env/--obs/--variant selection); not selected: a policy the --policy "
        "selection left out; –: neither a record nor a paper number. "
        "Robomimic columns score the success rate; Push-T the mean over episodes of the episode's max reward "
        "(target coverage / 0.95, clipped to 1), as the paper does."
        + (
            " (last n): the run evaluated fewer than 10 times, so its avg-last-10 averages all n evaluations."
            if few
            else ""
        ),
        "dpbench trains robomimic cells on scripted demonstrations (scripted = ph-like, scripted-mh = mh-like), "
        "not on the paper's human data. "
        + (f"Presets of the cells shown: {at}" if at else "No cell of ours is in this selection.")
        + (" (quick: CPU-sized, far shorter than the paper's training)" if "quick" in presets else "")
        + (
            " (smoke: a few steps that check the pipeline; its scores mean nothing, and the claims leave it out)"
            if "smoke" in presets
            else ""
        )
        + (": compare with care." if at else ""),
        "Cells from: " + ("; ".join(sources) if sources else "none") + ".",
    ]
    if alternatives:
        notes.append(
            "ᵃ other configurations of this cell are on record; the cell shows, in this order of preference, the "
            "paper's action space for the policy (DP absolute, the baselines delta), today's protocol, the preset "
            "nearest the paper's (paper, quick, others, smoke), that preset as defined today, the most seeds, the "
            "newest. dpbench table (the pivot layout) lists them all."
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
    if pooled:
        notes.append(f"ʳ the seeds trained on {RECOLLECTED}; 'Cells from' joins their hashes by '+'.")
    if rising:
        notes.append(
            f"↗ still rising when its budget ended: {LATE_TREND_RULE}; a longer budget would likely raise its "
            "avg-last-10, and its max where below 1. Rise over that quarter: " + "; ".join(rising) + "."
        )
    if caveats:
        notes.append("ⁱ the paper's number was made another way: " + "; ".join(caveats) + ".")
    if schedule:
        notes.append(
            "ˢ not its preset as defined today: a field that shapes the scores differs from the preset (the "
            "schedule, the model, the optimizer; dpbench table, the pivot layout, lists how), so its max and "
            "avg-last-10 are another experiment's, and the claims leave the cell out."
        )
    # ``selected`` holds each --policy name as given and the name its records carry (record_policy_names); a
    # module:Class reference is judged by the latter, so only a plain name can be reported as unshown
    unshown = sorted(p for p in selected or () if p not in PAPER_ROWS and ":" not in p and p not in shown)
    if unshown:  # a selected policy the paper lacks gets a row only where it has a record
        notes.append(f"Selected, not in the paper, and no record in these columns (so no row): {', '.join(unshown)}.")
    headers = ["policy", *(column_label(c) for c in cols)]
    return Table(headers, body, notes, label_cols=1, fit_width=True)


def _tidy(records: list[dict[str, Any]], kind: str, envs: ColumnFilter | None) -> list[dict[str, Any]]:
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
                    "policy": row,  # the paper's name (its code's: diffusion_cnn); dpbench's next
                    "dpbench_policy": g.policy if g else None,
                    "task": col[0],
                    "variant": col[1],
                    "seeds": g.seeds if g else 0,
                    "max": g.max if g else None,
                    "max_std": g.max_std if g and g.seeds > 1 else None,  # one seed has no spread
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
                    **late_trend_fields(g),
                    "paper_caveat": PAPER_CAVEATS.get((kind, row, col), ""),
                }
            )
    return out


def format_paper_table(
    records: list[dict[str, Any]],
    fmt: str = "md",
    claims: bool = False,
    envs: ColumnFilter | None = None,
    selection: str = "",
    obs: list[str] | None = None,
    policies: list[str] | None = None,
) -> str:
    """Tables I and II (each only if records of its observation kind exist) in the paper's layout, and with
    ``claims`` the claims table under each; md, latex, html, or csv (one tidy row per cell; with ``claims``,
    one tidy row per column compared instead). ``envs``: only these tasks' columns (or these (task, variant)
    columns); ``selection``: the filter that chose ``records``, named under the claims. With a filter (``envs`` or
    ``selection``) and no record, the tables of ``obs`` (None: both) show the paper's numbers, each cell "no
    record"; ``policies``: the --policy selection, whose other rows say "not selected" (``paper_layout``). Raises
    DpbenchError for an unknown format or when no record has an observation kind of the paper's tables (and no
    filter)."""
    kinds = [k for k in ("state", "image") if any(TABLE_OF_OBS.get(r["obs"]) == k for r in records)]
    if not kinds and (envs or selection):  # a selected column, policy or obs mode nobody has run yet
        wanted = {TABLE_OF_OBS.get(o) for o in obs} if obs else {"state", "image"}
        kinds = [k for k in ("state", "image") if k in wanted]
    if not kinds:
        raise DpbenchError(
            "no record fits the paper's tables (Push-T keypoints or image, robomimic low_dim or image); "
            "run one first, e.g. dpbench run --policy diffusion --env pusht"
        )
    if fmt == "csv":
        if claims:
            return tidy_csv([row for k in kinds for row in tidy_claims(records, k, envs, selection)], "table")
        return tidy_csv([row for k in kinds for row in _tidy(records, k, envs)], "table")
    if fmt not in RENDERERS:
        raise DpbenchError(f"unknown table format '{fmt}'; use one of md, csv, latex, html")
    parts = []
    for k in kinds:
        layout = paper_layout(records, k, envs, policies)
        layout.title = TABLE_TITLES[k]
        parts.append(RENDERERS[fmt](layout))
        if claims:
            recomputed = claims_table(records, k, envs, selection)
            recomputed.title = f"{TABLE_TITLES[k]}: the paper's claims, recomputed"
            parts.append(RENDERERS[fmt](recomputed))
    return "\n\n".join(parts)


def paper_section(records: list[dict[str, Any]]) -> str:
    """results/README.md's section: the records in the paper's layout with its claims ("" when none fits)."""
    try:
        body = format_paper_table(records, "md", claims=True)
    except DpbenchError:
        return ""
    key = (
        "Each cell reads: ours, max ± std over seeds / avg-last-10; n seeds; held-out score [95% CI]; then (the "
        "paper's max / avg-last-10). Marks, sources and caveats follow each table; the claims compare max."
    )
    title = "## In the paper's layout, with its claims (`dpbench table --layout paper --claims`)"
    return "\n\n".join([title, key, body])
