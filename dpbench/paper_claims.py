"""The paper's claims, recomputed from dpbench's records: per column of Chi et al. 2023's Table I or II,
Diffusion Policy (the better of DP-C and DP-T) against the best baseline (LSTM-GMM, IBC, BET) by max, ours
beside the paper's own numbers, and the rankings with the pairs they order differently. Which records fill a
cell: ``dpbench.paper_cells``; the table around it: ``dpbench.paper_table``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dpbench.paper_cells import (
    BASELINES,
    DP_ROWS,
    LEFT_OUT,
    PAPER_CAVEATS,
    PAPER_ROWS,
    ROW_LABELS,
    TABLE_TITLES,
    Column,
    ColumnFilter,
    column_label,
    fill_cells,
    left_out,
    paper_columns,
    paper_values,
)
from dpbench.presets import IMAGE_TRAIN_PRESETS, ROBOMIMIC_FLOOR_STEPS
from dpbench.render import Cell, Table

Versus = tuple[str, float, str, float]  # (DP row, DP max, best baseline row, its max)


@dataclass(frozen=True)
class ColumnClaim:
    """Diffusion Policy against the best baseline in one column, ours and the paper's. ``None`` where a side
    lacks DP or every baseline. ``ranking`` lists (policy row, max) best first; ``compared`` how many
    policies both sides report; ``disagree`` the pairs of those that ours orders opposite to the paper by
    more than ``SEED_NOISE`` ("order"), or that the paper ties (within 0.005) and ours separates by more
    than ``SEED_NOISE`` ("tie"); ``within_noise`` the pairs that differ the same ways by less (shown, not
    counted: the same margin both ways), a paper tie only where ours' 2-decimal figures differ. ``paper_same``:
    the paper's comparison over only the policies ours has in the column (like for like); ``seeds``: ours per
    policy row; ``evaluations``: the fewest and most evaluations a seed's run of the column made; ``rising``: ours'
    rows still improving when their budget ended (``metrics.late_trend``)."""

    col: Column
    ours: Versus | None
    paper: Versus | None
    ranking_ours: list[tuple[str, float]]
    ranking_paper: list[tuple[str, float]]
    compared: int
    disagree: list[tuple[str, str, str]]
    paper_same: Versus | None = None
    seeds: dict[str, int] | None = None
    within_noise: list[tuple[str, str, str]] = field(default_factory=list)
    evaluations: tuple[int, int] | None = None
    rising: frozenset[str] = frozenset()

    @property
    def thin(self) -> bool:
        """Whether ours has fewer than the paper's 3 seeds of a policy both sides report here."""
        reported = {r for r, _ in self.ranking_paper}
        return any(n < 3 for r, n in (self.seeds or {}).items() if r in reported)

    @property
    def full_seeds(self) -> bool:
        """Whether ours compares DP and the best baseline with at least the paper's 3 seeds each."""
        return self.ours is not None and all((self.seeds or {}).get(r, 0) >= 3 for r in (self.ours[0], self.ours[2]))


SEED_NOISE = 0.05  # a gap in max smaller than this is within the seed spread of 3-seed means (Push-T: ~0.02-0.05)


def _versus(values: dict[str, float]) -> Versus | None:
    dps = [r for r in DP_ROWS if r in values]
    bases = [r for r in BASELINES if r in values]
    if not dps or not bases:
        return None
    dp_row, base_row = max(dps, key=values.get), max(bases, key=values.get)  # a tie keeps the paper's row order
    return dp_row, values[dp_row], base_row, values[base_row]


def column_claims(records: list[dict[str, Any]], kind: str, envs: ColumnFilter | None = None) -> list[ColumnClaim]:
    """Per column with at least one comparable record of the paper's policies: DP (the better of DP-C and DP-T,
    as the paper's headline takes) against the best of LSTM-GMM, IBC and BET, by max; and the rankings.
    Comparable: today's protocol, the preset as defined today (``paper_cells.off_schedule``), not a smoke run,
    and the paper's action space for the policy; other cells are left out."""
    _, cols, cells = fill_cells(records, kind, envs)
    out = []
    for col in cols:
        usable = {r: c.group for (r, cc), c in cells.items() if cc == col and c.group and not left_out(r, c.group)}
        ours = {r: g.max for r, g in usable.items()}
        paper = {r: c.paper["max"] for (r, cc), c in cells.items() if cc == col and r in PAPER_ROWS and c.paper}
        if not ours:
            continue
        both = [r for r in PAPER_ROWS if r in ours and r in paper]
        disagree, noise = [], []
        for i, a in enumerate(both):
            for b in both[i + 1 :]:
                d_ours, d_paper = ours[a] - ours[b], paper[a] - paper[b]
                if abs(d_paper) < 0.005:  # a paper tie: ours may separate it by up to the seed spread
                    if abs(d_ours) > SEED_NOISE:
                        disagree.append((a, b, "tie"))
                    elif f"{ours[a]:.2f}" != f"{ours[b]:.2f}":  # shown as an order ('>') in ours' ranking
                        noise.append((a, b, "tie"))
                elif d_ours * d_paper < 0:  # the same margin: a reversal inside the seed spread is noise
                    (disagree if abs(d_ours) > SEED_NOISE else noise).append((a, b, "order"))
        rank = lambda v: sorted(v.items(), key=lambda kv: -kv[1])  # noqa: E731
        same = _versus({r: m for r, m in paper.items() if r in ours})
        seeds = {r: g.seeds for r, g in usable.items()}
        counts = [n for g in usable.values() for n in g.evaluations]
        out.append(
            ColumnClaim(
                col,
                _versus(ours),
                _versus(paper),
                rank(ours),
                rank(paper),
                len(both),
                disagree,
                same,
                seeds,
                noise,
                (min(counts), max(counts)),
                # a max at 1 cannot rise: the claims compare max, so only a cell below it is marked
                frozenset(r for r, g in usable.items() if g.late_trend and g.late_trend.rising and g.max < 0.995),
            )
        )
    return out


def _evals(claims: list[ColumnClaim]) -> str:
    """How many evaluations the compared runs' max is taken over: "11 evaluations per run", or a range."""
    spans = [c.evaluations for c in claims if c.evaluations]
    if not spans:
        return "the preset's evaluations"
    lo, hi = min(s[0] for s in spans), max(s[1] for s in spans)
    return f"{lo} evaluations per run" if lo == hi else f"{lo}-{hi} evaluations per run"


def _relative(v: Versus | None) -> float | None:
    return None if v is None or v[3] <= 0 else (v[1] - v[3]) / v[3]


def claims_table(
    records: list[dict[str, Any]], kind: str, envs: ColumnFilter | None = None, selection: str = ""
) -> Table:
    """The paper's headline claim, recomputed: per column, DP's max minus the best baseline's (absolute and
    relative), ours beside the paper's, the rankings and the pairs they order differently; then the mean
    relative improvement over the columns where ours has DP and a baseline, ours against the paper's own
    numbers on the same columns and on all of its columns. ``selection``: the --env/--policy/--obs/--variant filter
    applied to ``records``, named in the notes because it changes which baseline is best."""
    claims = column_claims(records, kind, envs)
    label = lambda row: ROW_LABELS.get(row, row)  # noqa: E731

    # Cells are lines that join with spaces into one sentence (md, HTML) and stack in LaTeX.
    def versus(v: Versus | None, seeds: dict[str, int] | None = None, rising: frozenset[str] = frozenset()) -> Cell:
        if v is None:
            return "–"
        rel = _relative(v)

        def n(row: str) -> str:
            return (f" (n={seeds[row]})" if seeds and seeds.get(row, 3) < 3 else "") + (" ↗" if row in rising else "")

        diff = f"{v[1] - v[3]:+.2f}{f' ({rel:+.0%})' if rel is not None else ''}"
        return (f"{label(v[0])} {v[1]:.2f}{n(v[0])} vs", f"{label(v[2])} {v[3]:.2f}{n(v[2])}:", diff)

    def ranking(r: list[tuple[str, float]], seeds: dict[str, int] | None = None) -> Cell:
        lines = []
        for i, (p, m) in enumerate(r):  # equal scores (at the 2 decimals shown) are ties, not an order
            n = f" (n={seeds[p]})" if seeds and seeds.get(p, 3) < 3 else ""
            tie = "" if i == 0 else "= " if f"{m:.2f}" == f"{r[i - 1][1]:.2f}" else "> "
            lines.append(f"{tie}{label(p)} {m:.2f}{n}")
        return tuple(lines) or "–"

    def pair(a: str, b: str, how: str) -> str:
        return f"{label(a)}/{label(b)}{' (paper: tie)' if how == 'tie' else ''}"

    body: list[list[Cell]] = []
    for c in claims:
        pairs = [pair(*p) for p in c.disagree]
        agree = ["– (fewer than 2 policies)"] if c.compared < 2 else ["no: " + ", ".join(pairs) if pairs else "yes"]
        if c.within_noise and c.compared >= 2:
            within = ", ".join(pair(*p) for p in c.within_noise)
            agree = [f"{agree[0]};" if pairs else agree[0], f"(within {SEED_NOISE}: {within})"]
        if c.thin and c.compared >= 2:
            agree.append("(ours from fewer than 3 seeds)")
        row = [column_label(c.col), versus(c.ours, c.seeds, c.rising), versus(c.paper_same), versus(c.paper)]
        body.append([*row, ranking(c.ranking_ours, c.seeds), ranking(c.ranking_paper), tuple(agree)])
    marked = any(n < 3 for c in claims for n in (c.seeds or {}).values())  # an (n=k) mark in ours
    shared, full, all_paper = _mean_inputs(claims, kind)
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731

    def mean_of(rows: list[Compared], i: int) -> str:
        m, n = _mean_at(rows, i)
        return f"{m:+.1%}" + (f" ({n} columns)" if n != len(rows) else "") if m is not None else "–"

    def mean_cell(i: int, subset: str, none: str = "") -> Cell:
        # Columns where ours compares a 1- or 2-seed max move the mean by more than seed noise: the mean over the
        # columns with the paper's 3 seeds of both sides is given beside it, on our side and the paper's alike.
        whole = mean_of(shared, i)
        if len(full) == len(shared):
            return whole
        if full:
            return (whole, f"({subset}: {mean_of(full, i)})")
        return (whole, none) if none else whole

    if shared:
        body.append(
            [
                f"mean over {len(shared)} column(s)",
                mean_cell(1, f"{len(full)} with 3 seeds", none="(none with 3 seeds of both)"),
                mean_cell(2, f"the same {len(full)}"),
                f"{mean_of(shared, 3)} (all {len(all_paper)} columns: {mean(all_paper):+.1%})",
                "",
                "",
                "",
            ]
        )
    notes = [
        "DP: the better of DP-C and DP-T by max; baseline: the best of LSTM-GMM, IBC and BET by max. Relative "
        "improvement: (DP - baseline) / baseline; the gap (DP - baseline) and the improvement come from unrounded "
        "means (so 0.29 vs 0.21 can read +0.07); "
        "a column whose best baseline scores 0 has none. Ours: dpbench's "
        "cell in the paper layout above (mean max over seeds), only cells under today's protocol and their "
        "preset's schedule in the paper's action space; paper: Chi et al. 2023 "
        + TABLE_TITLES[kind]
        + "."
        + (
            " (n=k): ours has fewer than the paper's 3 seeds of that policy; the mean row then also gives the mean "
            "over only the columns where ours compares DP and the baseline at 3 seeds each, on both sides."
            if marked
            else ""
        )
        + (
            " ↗: that cell of ours was still rising when its budget ended (the layout above): the comparison is at "
            "the presets' budgets, not at convergence, and can move either way with longer training."
            if any(c.ours and ({c.ours[0], c.ours[2]} & c.rising) for c in claims)
            else ""
        ),
        "paper, same policies: the paper's comparison over the same set of policies ours has in that column (its best "
        "DP and best baseline among them, which can be another pair than ours picks); where ours lacks the paper's "
        "best DP or best baseline, the paper's headline compares policies ours does not have.",
        "The paper's abstract reports a 46.9% average improvement over 12 tasks and 4 benchmarks, including tasks "
        "beyond Tables I/II, without stating its formula; the figure here is the same comparison made per column of "
        "this table only, on both sides.",
        "rankings agree: over the policies both sides report in this column (the ranking, not the improvement), "
        "no pair that ours orders the other way, and no "
        f"pair the paper ties that ours separates, by more than {SEED_NOISE} (about the seed spread of a 3-seed "
        "mean; a reversal or a separated tie within it is listed, not counted); needs 2 policies. Where ours has "
        "fewer than 3 seeds of "
        "a policy compared, the margin is narrower than its noise, and the cell says so.",
        "Ours is not a replication: robomimic columns train on dpbench's scripted demonstrations, not robomimic's "
        "human ones; each policy trains for its preset's budget: "
        + (
            "on Push-T its own knee (not equal across policies), on robomimic the same "
            f"{ROBOMIMIC_FLOOR_STEPS:,} steps of 64 windows for DP-C, DP-T, LSTM-GMM and IBC (the original trains "
            "DP-C, DP-T and LSTM-GMM for equal epochs) and BET its own, longer budget"
            if kind == "state"
            else f"with images the shared quick schedule ({IMAGE_TRAIN_PRESETS['quick']['steps']:,} steps, "
            "dpbench.presets.IMAGE_TRAIN_PRESETS) for every policy"
        )
        + f", each x3 on Transport and ToolHang and x1.5 on mh (dpbench.presets); max is taken over {_evals(claims)}"
        ", not the original's 100 or more (docs/baselines_vs_original.md). Read "
        "'rankings agree' and the means as a check of the paper's ordering under these conditions.",
    ]
    if not claims:  # say why, from what the cells hold: no record, or only records the claims leave out
        cells = fill_cells(records, kind, envs)[2].items()
        why = sorted({w for (r, _), c in cells if c.group and (w := left_out(r, c.group))}, key=LEFT_OUT.index)
        listed = ", ".join(why[:-1]) + f"{',' * (len(why) > 2)} or {why[-1]}" if len(why) > 1 else "".join(why)
        said = f"the records here are {listed}" if why else "these columns have no record yet"
        notes.insert(0, f"No column qualifies: {said}.")
    caveats = [
        f"{ROW_LABELS.get(row, row)} {column_label(col)}: {why}"
        for (k, row, col), why in PAPER_CAVEATS.items()
        if k == kind and any(c.col == col for c in claims)
    ]
    if caveats:
        notes.append("The paper's side includes a number made another way than ours: " + "; ".join(caveats) + ".")
    if selection:
        notes.append(f"Computed over the selected records only ({selection}): the best baseline is among those.")
    # a --policy selection can leave out the best baseline: the header says whose best it is
    ours = "ours: DP vs best selected baseline" if "--policy" in selection else "ours: DP vs best baseline"
    headers = ["column", ours, "paper, same policies", "paper: DP vs best baseline"]
    return Table(
        [*headers, "ranking (ours)", "ranking (paper)", "rankings agree"], body, notes, label_cols=1, fit_width=True
    )


Compared = tuple[ColumnClaim, float | None, float | None, float | None]  # a column and its 3 relative improvements


def _mean_at(rows: list[Compared], i: int) -> tuple[float | None, int]:
    """The mean of the ``i``-th relative improvement over ``rows`` where it exists, and how many it averages."""
    vals = [r[i] for r in rows if r[i] is not None]
    return (sum(vals) / len(vals) if vals else None), len(vals)


def _mean_inputs(claims: list[ColumnClaim], kind: str) -> tuple[list[Compared], list[Compared], list[float]]:
    """What the means average: the columns where ours and the paper both have DP and a baseline, each with
    (ours, paper on the same policies, paper) relative improvement; those of them where ours has 3 seeds of
    both sides; and the paper's relative improvement in every column of its table."""
    shared = [(c, _relative(c.ours), _relative(c.paper_same), _relative(c.paper)) for c in claims]
    shared = [x for x in shared if x[1] is not None and x[3] is not None]
    full = [x for x in shared if x[0].full_seeds]
    all_paper = [x for x in (_relative(v) for v in _paper_versus(kind).values()) if x is not None]
    return shared, full, all_paper


def _paper_versus(kind: str) -> dict[Column, Versus | None]:
    """The paper's own DP-vs-best-baseline comparison in every column of its table."""
    paper = paper_values(kind)
    return {
        col: _versus({r: paper[(r, col)]["max"] for r in PAPER_ROWS if (r, col) in paper})
        for col in paper_columns(kind)
    }


def _ranking_text(ranking: list[tuple[str, float]], digits: int) -> str:
    """A ranking for csv, best first: "a:0.9012 = b:0.9000 > c:0.5000" (a tie: equal at 2 decimals, as the md
    table shows)."""
    text = ""
    for i, (p, m) in enumerate(ranking):
        if i:
            text += " = " if f"{m:.2f}" == f"{ranking[i - 1][1]:.2f}" else " > "
        text += f"{p}:{m:.{digits}f}"
    return text


def tidy_claims(
    records: list[dict[str, Any]], kind: str, envs: ColumnFilter | None, selection: str = ""
) -> list[dict[str, Any]]:
    """The claims as csv rows, one per column: each side's DP and best baseline, their max and relative
    improvement, ours' seed counts, the pairs ours orders differently (and those that differ within the margin),
    whether the column agrees (empty: fewer than 2 policies compared) and both rankings. Then the md table's
    means, as rows with task ``mean``, only the ``*_relative_improvement`` fields and ``mean_over`` (empty on a
    column's row): ``compared`` (the columns where ours and the paper both have DP and a baseline),
    ``compared_3_seeds`` (those where ours has 3 seeds of both; only when fewer) and ``paper_all_columns`` (the
    paper's over its whole table). Every row ends with ``selection``: the --env/--policy/--obs/--variant filter that
    chose ``records`` (empty: all of them; under --policy, ours' best baseline is the selection's best)."""
    out = []
    claims = column_claims(records, kind, envs)
    for c in claims:
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
        row["pairs_within_noise"] = " ".join(
            f"{a}/{b}{'(paper-tie)' if how == 'tie' else ''}" for a, b, how in c.within_noise
        )
        row["agrees"] = None if c.compared < 2 else not c.disagree
        # best first, "policy:max" joined by " > " or, for a tie (equal at the md table's 2 decimals), " = "
        row["ranking_ours"] = _ranking_text(c.ranking_ours, 4)
        row["ranking_paper"] = _ranking_text(c.ranking_paper, 2)
        row["mean_over"] = None  # a column, not a mean
        out.append(row)
    shared, full, all_paper = _mean_inputs(claims, kind)
    sides = ("ours", "paper_same_policies", "paper")

    def mean_row(over: str, rows: list[Compared]) -> dict[str, Any]:
        row: dict[str, Any] = {"table": kind, "task": "mean", "variant": None, "mean_over": over}
        for i, side in enumerate(sides, 1):
            row[f"{side}_relative_improvement"] = _mean_at(rows, i)[0]
        return row

    if shared:
        out.append(mean_row("compared", shared))
        if full and len(full) < len(shared):
            out.append(mean_row("compared_3_seeds", full))
    if out and all_paper:
        out.append({"table": kind, "task": "mean", "variant": None, "mean_over": "paper_all_columns"})
        out[-1]["paper_relative_improvement"] = sum(all_paper) / len(all_paper)
    for row in out:
        row["selection"] = selection
    return out
