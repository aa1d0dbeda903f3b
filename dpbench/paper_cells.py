"""The paper's grid and dpbench's records in it: Chi et al. 2023's Table I (state) and II (image) columns
(task x demo variant), its policy rows, and which group of records fills each cell.

Read by ``dpbench.paper_table`` (the layout and the claims). Records are grouped by ``dpbench.results``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dpbench.errors import DpbenchError
from dpbench.records import PROTOCOL_VERSION
from dpbench.results import PAPER_POLICY_NAMES, Group, group_records, load_reference

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
# The action space each policy trains on in the paper's robomimic runs: DP in absolute (position)
# actions, the baselines in robomimic's delta actions (docs/baselines_vs_original.md).
PAPER_ACTION_MODE = {
    "diffusion_cnn": "abs",
    "diffusion_transformer": "abs",
    "lstm_gmm": "delta",
    "ibc": "delta",
    "bet": "delta",
}
TASK_LABELS = {"lift": "Lift", "can": "Can", "square": "Square", "transport": "Transport", "tool_hang": "ToolHang"}
Column = tuple[str, str]  # (task, variant): ("lift", "ph")
ColumnFilter = list[str] | list[Column]  # the columns of these tasks, or these columns (``fill_cells``)


# Where the paper's number was made another way than dpbench's policy of that row: (table kind, row, column) -> why.
PAPER_CAVEATS: dict[tuple[str, str, Column], str] = {
    ("state", "diffusion_cnn", ("pusht", "ph")): (
        "the paper's DP-C on state Push-T conditioned on the observations by inpainting (the note in "
        "dpbench/reference/chi2023_table1_state.csv); dpbench's DP-C conditions by FiLM, as the original code's "
        "default low-dim config does (obs_as_global_cond: True)"
    ),
}


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


def paper_values(kind: str) -> dict[tuple[str, Column], dict[str, Any]]:
    return {(r["policy"], (r["task"], r["variant"])): r for r in load_reference(kind)}


def current(g: Group) -> bool:
    return all(r.get("protocol", 1) == PROTOCOL_VERSION for r in g.records)


def newest(g: Group) -> str:
    return max(r.get("date", "") for r in g.records)


# Fields whose value changes neither max nor avg-last-10: a config differing from its preset only in these is on it.
RESULT_NEUTRAL = ("train.checkpoint_every", "train.heldout_episodes")


def off_schedule(g: Group) -> bool:
    """Whether a cell's records depart from their preset as defined today in a field that shapes its scores:
    ``Group.drift`` but ``RESULT_NEUTRAL`` fields (the protocol version is ``current``'s)."""
    return any(k not in RESULT_NEUTRAL for k in g.drift)


def paper_actions(row: str, g: Group) -> bool:
    """The group trains in the action space the paper used for this policy (Push-T has one action space)."""
    want = PAPER_ACTION_MODE.get(row)
    return want is None or g.env == "pusht" or all(r.get("action_mode") in (None, want) for r in g.records)


# The presets a cell prefers, nearest the paper's training first; another name (a plugin's) ranks between quick
# and smoke, whose few steps check the pipeline and score nothing.
PRESET_RANK = {"paper": 2, "quick": 1, "smoke": -1}


def is_smoke(g: Group) -> bool:
    """Whether the group is a smoke run: a pipeline check whose scores no table or claim should compare."""
    return g.preset == "smoke"


# Why the claims leave a cell out, each a phrase completing "the records here are ...", in the order checked.
LEFT_OUT = (
    "of policies the paper does not have (its rows: LSTM-GMM, IBC, BET, DP-C, DP-T)",
    "smoke runs, a pipeline check that scores nothing (train --preset quick or paper)",
    "under an older evaluation protocol than today's (ᵛ)",
    "in another action space than the paper's for the policy",
    "not on their preset as defined today (ˢ)",
)


def left_out(row: str, g: Group) -> str | None:
    """Why the claims (``dpbench.paper_claims``) leave out the cell of ``row`` that holds ``g``: the first
    ``LEFT_OUT`` phrase that applies; None when they compare it."""
    checks = (
        row not in PAPER_ROWS,
        is_smoke(g),
        not current(g),
        not paper_actions(row, g),
        off_schedule(g),
    )
    return next((why for why, applies in zip(LEFT_OUT, checks) if applies), None)


def preference(row: str, g: Group) -> tuple:
    """The sort key (higher first) that picks one group of records for a cell of the paper's grid: the paper's
    action space for the policy of ``row``, today's protocol, the preset nearest the paper's (paper, quick, any
    other, smoke: ``PRESET_RANK``), that preset as defined today, the most seeds, the newest. The paper layout
    (``fill_cells``) and the reruns view (``dpbench.reruns``) both choose by it."""
    rank = PRESET_RANK.get(g.preset, 0)
    return (paper_actions(row, g), current(g), rank, not off_schedule(g), g.seeds, newest(g))


@dataclass(frozen=True)
class Cell:
    """One table cell: the chosen group of records (None: no record), how many other configurations of the
    same policy, task and variant exist on record, and the paper's numbers (None: not reported)."""

    group: Group | None
    alternatives: int
    paper: dict[str, Any] | None


def fill_cells(
    records: list[dict[str, Any]], kind: str, envs: ColumnFilter | None = None
) -> tuple[list[str], list[Column], dict[tuple, Cell]]:
    """The rows (the paper's policies, then any other policy on record), the columns (when ``envs`` is given, only
    those of its tasks, or its (task, variant) columns: ``dpbench table --variant``) and the cells of one table.

    A cell holds one configuration, chosen in this order (``preference``): the paper's action space for that
    policy (DP absolute, the baselines delta), today's evaluation protocol, the preset nearest the paper's, that
    preset as defined today (``off_schedule``), the most seeds, the newest.
    ``dpbench table`` (the pivot layout) shows every configuration."""
    cols = [c for c in paper_columns(kind) if envs is None or c[0] in envs or c in envs]
    paper = paper_values(kind)
    buckets: dict[tuple[str, Column], list[Group]] = {}
    for g in group_records(records):
        if TABLE_OF_OBS.get(g.obs) != kind:
            continue
        col = (g.env, g.variant)
        if col not in cols:
            continue
        buckets.setdefault((PAPER_POLICY_NAMES.get(g.policy, g.policy), col), []).append(g)
    extra = sorted({row for row, _ in buckets} - set(PAPER_ROWS))
    rows = [*PAPER_ROWS, *extra]
    cells = {}
    for row in rows:
        for col in cols:
            found = sorted(
                buckets.get((row, col), []),
                key=lambda g, row=row: preference(row, g),
                reverse=True,
            )
            cells[(row, col)] = Cell(found[0] if found else None, max(len(found) - 1, 0), paper.get((row, col)))
    return rows, cols, cells


def check_paper_selection(envs: list[str] | None, obs: list[str] | None) -> None:
    """Refuse an ``--obs`` selection the paper layout cannot show: a mode in neither of the paper's tables
    (``state``), or an ``--env`` task with none of the selected modes of a table that is printed
    (``--env lift --obs keypoints``; ``--env transport --obs keypoints,image`` for Table I), whose columns there
    would read "no record" beside the records of the task's own mode. Names are known (``select_records``
    checked them). Raises DpbenchError saying which modes to pass."""
    from dpbench.tasks import TASKS

    outside = [o for o in obs or () if o not in TABLE_OF_OBS]
    if outside:  # e.g. `state`: Table I's title says state observations, its modes are keypoints and low_dim
        raise DpbenchError(
            f"obs mode '{', '.join(outside)}' is in neither of the paper's tables: Table I (state observations) "
            "is Push-T keypoints and robomimic low_dim (--obs keypoints,low_dim), Table II is image (--obs image)"
        )
    for kind, title in TABLE_TITLES.items():  # each printed table on its own: its columns, its selected modes
        modes = [o for o in obs or () if TABLE_OF_OBS[o] == kind]
        if not modes:  # that table is not printed
            continue
        lacking = [e for e in envs or () if e in TASKS and not set(modes) & set(TASKS[e].obs_modes)]
        if lacking:
            theirs = "; ".join(
                f"{e}: {', '.join(m for m in TASKS[e].obs_modes if TABLE_OF_OBS.get(m) == kind)}" for e in lacking
            )
            raise DpbenchError(
                f"{', '.join(lacking)} {'has' if len(lacking) == 1 else 'have'} no obs mode {' or '.join(modes)}, "
                f"so {title} would read 'no record' in {'its' if len(lacking) == 1 else 'their'} columns, which are "
                f"under {theirs}; for Table I pass --obs keypoints,low_dim, for Table II --obs image"
            )
