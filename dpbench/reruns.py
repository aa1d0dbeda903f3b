"""Before and after a fix: superseded records beside the records that replaced them.

A fix that changes what old records meant moves them to ``results/superseded/<reason>/`` (with a
README saying why). This pairs each superseded group with today's group of the same env, obs, policy,
preset, demo variant and demonstrations (in either action space), so ``results/README.md`` shows what the
fix changed. Where today has several such groups, the paper's action space comes first (a fix that moved a
policy to delta actions is shown against its delta records), then a group trained on the superseded
group's own collection (the fix alone changed), then the paper layout's order
(``dpbench.paper_cells.preference``). Each row names its data and its training steps, since a superseded
folder can hold runs of another length than today's preset.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dpbench.paper_cells import paper_actions, preference
from dpbench.records import read_evidence
from dpbench.render import mean_std
from dpbench.results import PAPER_POLICY_NAMES, Group, group_records, short_hash


def _key(g: Group) -> tuple:
    # a recipe's absolute and delta collections (one planner, the same seeds) are one cell's two action spaces
    return (g.env, g.obs, g.policy, g.preset, g.variant, g.dataset_kind.removesuffix("-delta"))


def _today(old: Group, groups: list[Group]) -> Group:
    """Of today's groups of ``old``'s cell, the one the paper layout would show (``preference``), except that
    within the paper's action space a group trained on ``old``'s own collection comes first (the fix alone
    changed)."""
    hashes = set(old.dataset_hash.split("+"))

    def rank(g: Group) -> tuple:
        row = PAPER_POLICY_NAMES.get(g.policy, g.policy)
        return (paper_actions(row, g), bool(hashes & set(g.dataset_hash.split("+"))), preference(row, g))

    return max(groups, key=rank)


def _steps(g: Group) -> str:
    steps = sorted({r["history"][-1]["step"] for r in g.records if r.get("history")})
    return "–" if not steps else f"{steps[0]:,}" if len(steps) == 1 else f"{steps[0]:,}-{steps[-1]:,}"


def _cell(g: Group) -> str:
    return (
        f"{g.dataset_kind} {short_hash(g.dataset_hash)} | {_steps(g)} | "
        f"{mean_std(g.max, g.max_std, g.seeds)} / {mean_std(g.avg_last10, g.avg_last10_std, g.seeds)} | "
        f"{g.success:.2f} [{g.success_ci[0]:.2f}, {g.success_ci[1]:.2f}] | {g.seeds} | {g.minutes_per_seed:.1f}"
    )


def rerun_section(out: Path, records: list[dict[str, Any]]) -> str:
    """Markdown: for each folder under ``out/superseded`` whose groups were rerun, the old and new
    data, training steps (the records' last evaluated step), max / avg-last-10, final success rate, seeds and
    minutes per seed. "" when there is none."""
    current: dict[tuple, list[Group]] = {}
    for g in group_records(records):
        current.setdefault(_key(g), []).append(g)
    lines: list[str] = []
    for folder in sorted(p for p in (Path(out) / "superseded").glob("*") if p.is_dir()):
        pairs = [
            (old, _today(old, current[_key(old)]))
            for old in group_records(read_evidence(folder))
            if _key(old) in current
        ]
        if not pairs:
            continue
        lines += [
            f"### `superseded/{folder.name}` against today's records (reasons: `superseded/README.md`)",
            "",
            "| task | policy | records | data | steps | max / avg-last-10 | final-evaluation success (95% CI) | "
            "seeds | min/seed |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for old, new in pairs:
            lines.append(f"| {old.task} | {old.policy} | superseded | {_cell(old)} |")
            lines.append(f"| {new.task} | {new.policy} | **now** | {_cell(new)} |")
        lines.append("")
    return "\n".join(["## Reruns: before and after a fix", "", *lines]) if lines else ""
