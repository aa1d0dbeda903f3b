"""The cells of a grid: all resolved before any starts, described in a few lines, and each run under
its lock (``execute``, in the driver or in a worker process)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from dpbench.bars import terminal_bar
from dpbench.contract import is_builtin, plugin_hint
from dpbench.data.registry import ROBOMIMIC_SCRIPTED, data_variant, dataset_name_problem, scripted_name
from dpbench.errors import DatasetMissing, DpbenchError, did_you_mean, first_line, raised_at
from dpbench.host import resolve_device
from dpbench.policies import available_policies, get_policy_class, paper_labels, policy_hint, valid_policies_text
from dpbench.policy import Policy
from dpbench.records import read_record
from dpbench.runner import CellConfig, CellSpec, PreparedCell, dataset_name, prepare, resolve_config, run_cell
from dpbench.sweep.lock import CellLock
from dpbench.tasks import TASKS

T = TypeVar("T")


def _check_names(specs: list[CellSpec]) -> dict[str, None]:
    """Every unknown policy, env or dataset name and bad device of a grid, one message each (in order, no
    repeats)."""
    problems: dict[str, None] = {}
    bad_envs = sorted({s.env for s in specs if s.env not in TASKS})
    if bad_envs:
        problems[
            f"unknown env{'s' if len(bad_envs) > 1 else ''} {', '.join(map(repr, bad_envs))}; "
            f"valid envs: {', '.join(sorted(TASKS))}{did_you_mean(bad_envs, TASKS)}"
        ] = None
    registered = available_policies()
    bad_policies = sorted({s.policy for s in specs if ":" not in s.policy and s.policy not in registered})
    if bad_policies:
        problems[
            f"unknown polic{'ies' if len(bad_policies) > 1 else 'y'} {', '.join(map(repr, bad_policies))}; "
            f"valid policies: {valid_policies_text(registered)}{policy_hint(bad_policies)}"
        ] = None
    for name in sorted({s.policy for s in specs if s.policy not in bad_policies}):
        try:
            get_policy_class(name)
        except DpbenchError as exc:
            problems[str(exc)] = None
    for env, dataset in sorted({(s.env, s.dataset) for s in specs if s.env in TASKS and s.dataset}):
        problem = dataset_name_problem(env, dataset, TASKS[env].datasets)
        if problem is not None:  # a typo, not a missing file: --skip-blocked must not skip it
            problems[problem] = None
    for device in sorted({s.device for s in specs}):
        try:
            resolve_device(device)
        except DpbenchError as exc:
            problems[str(exc)] = None
    return problems


def check_specs(specs: list[CellSpec]) -> list[CellConfig]:
    """Each cell's resolved config, or one DpbenchError naming every unknown policy, env or dataset name, bad
    device and bad config of the grid. Reads no dataset and writes nothing, so a grid with a typo stops
    before anything is made."""
    problems = _check_names(specs)
    configs = []
    for spec in specs if not problems else []:
        try:
            configs.append(resolve_config(spec))
        except DpbenchError as exc:
            problems[str(exc)] = None
    if problems:
        raise DpbenchError("; ".join(problems))
    return configs


def _prepare_each(
    pairs: list[tuple[CellSpec, CellConfig]], collect: bool, seen: set[str]
) -> list[PreparedCell | DpbenchError | None]:
    """Each (spec, config)'s prepared cell, or the dataset error that stopped it, or None where its cell id is
    already in ``seen`` (which grows). Datasets are loaded (with ``collect``, collected) once per (env, obs,
    dataset)."""
    data: dict[tuple, Any] = {}
    out: list[PreparedCell | DpbenchError | None] = []
    for spec, cfg in pairs:
        key = (spec.env, spec.obs, dataset_name(spec, cfg.policy_cls))
        try:
            cell = prepare(spec, data.get(key), collect=collect, config=cfg)
        except DpbenchError as exc:
            out.append(exc)
            continue
        data[key] = cell.data
        out.append(None if cell.cell_id in seen else cell)
        seen.add(cell.cell_id)
    return out


def _resolve_all(specs: list[CellSpec]) -> list[tuple[CellSpec, CellConfig, PreparedCell | DpbenchError]]:
    """Each cell of a grid with its config and its prepared cell, or the dataset error that stopped it: a task
    without a demonstrator, a missing file, or DatasetMissing (demos not collected yet: nothing is collected
    here). Unknown names, bad devices and bad configs of every cell raise one DpbenchError before any data is
    loaded. Cells that resolve to the same cell id are kept once; a prepared cell comes with prepare's config
    (re-resolved for a file's own variant)."""
    pairs = list(zip(specs, check_specs(specs), strict=True))
    results = _prepare_each(pairs, collect=False, seen=set())
    return [
        (spec, r.config if isinstance(r, PreparedCell) else cfg, r)
        for (spec, cfg), r in zip(pairs, results, strict=True)
        if r is not None
    ]


def prepare_all(specs: list[CellSpec], skipped: list[str] | None = None) -> list[PreparedCell]:
    """Resolve every cell before any starts: all unknown names and bad configs in one error, then each cell's
    dataset (collected on first use). Cells that resolve to the same cell id are kept once. Raises one
    DpbenchError naming every problem; with a ``skipped`` list, a cell whose dataset cannot be had here
    (a task without a demonstrator, a missing file) is left out and described there instead."""
    resolved = _resolve_all(specs)
    # What cannot be had here stops the grid before hours of collecting what can: a grid whose Push-T cells
    # need the human demos would otherwise fail only after collecting every robomimic set before them.
    blocked = {str(r): None for *_, r in resolved if isinstance(r, DpbenchError) and not isinstance(r, DatasetMissing)}
    if blocked and skipped is None:
        raise DpbenchError("; ".join(blocked))
    seen = {r.cell_id for *_, r in resolved if isinstance(r, PreparedCell)}
    missing = [(spec, cfg) for spec, cfg, r in resolved if isinstance(r, DatasetMissing)]
    collected = iter(_prepare_each(missing, collect=True, seen=seen))
    cells, problems = [], {}
    for spec, cfg, result in resolved:
        if isinstance(result, DatasetMissing):  # collected now, in the grid's order
            result = next(collected)
            if result is None:  # the same cell id as a cell before it
                continue
        if isinstance(result, PreparedCell):
            cells.append(result)
        elif skipped is not None:
            skipped.append(f"{cfg.policy_cls.name} {spec.env}/{cfg.obs} seed {spec.seed}: {result}")
        else:
            problems[str(result)] = None
    if problems:
        raise DpbenchError("; ".join(problems))
    return cells


@dataclass(frozen=True)
class PlannedCell:
    """A cell as ``dpbench sweep --dry-run`` sees it, resolved without collecting any dataset: ``cell`` is
    None when its dataset is not cached yet (``problem`` says where it would go) or cannot be had here
    (``blocked``, ``problem`` says why)."""

    spec: CellSpec
    config: CellConfig
    cell: PreparedCell | None
    problem: str = ""
    blocked: bool = False
    action_mode: str | None = None  # the dataset's (robomimic abs | delta), known from its name before it exists
    missing: DatasetMissing | None = None  # the dataset not cached yet (its kind, and path as records store them)


def plan_all(specs: list[CellSpec]) -> list[PlannedCell]:
    """Like ``prepare_all``, but collects nothing: cached datasets are loaded (for exact cell ids and their
    done / resume state), missing ones are reported. Raises one DpbenchError for bad names or configs."""
    planned = []
    for spec, cfg, result in _resolve_all(specs):
        if isinstance(result, PreparedCell):
            planned.append(PlannedCell(spec, cfg, result, action_mode=result.action_mode))
        elif isinstance(result, DatasetMissing):
            problem = f"{result} ({result.path})"
            planned.append(PlannedCell(spec, cfg, None, problem, action_mode=result.action_mode, missing=result))
        else:
            planned.append(PlannedCell(spec, cfg, None, str(result), blocked=True))
    return planned


def describe(cells: list[PreparedCell]) -> list[str]:
    """What is about to run, in a few lines (grid shape, datasets)."""

    def uniq(values: Iterable[T]) -> list[T]:
        return list(dict.fromkeys(values))

    policies, tasks = uniq(c.spec.policy for c in cells), uniq(f"{c.spec.env}/{c.obs}" for c in cells)
    seeds, presets = uniq(c.spec.seed for c in cells), uniq(c.spec.preset for c in cells)
    lines = [
        f"[dpbench] {', '.join(policies)} on {', '.join(tasks)}, preset {', '.join(presets)}, seeds {seeds}"
        f" ({len(cells)} cell{'s' if len(cells) != 1 else ''})"
    ]
    for d in uniq((c.data.kind, str(c.data.path), c.data.store.content_hash()) for c in cells):
        lines.append(f"[dpbench] dataset {d[0]} {d[1]} (hash {d[2]})")
    for c in cells:
        lines.extend(_action_space_note(c))
    return list(dict.fromkeys(lines))  # a note once per policy and dataset, not per seed


def _action_space_note(cell: PreparedCell) -> list[str]:
    """robomimic: a line when a cell's action space is not the default (``Policy.default_action_mode``, abs) because
    its policy chose it, or is not its policy's ``default_action_mode`` because ``--dataset`` chose it; none
    otherwise."""
    name, kind, mode, want = cell.spec.policy, cell.data.kind, cell.action_mode, cell.policy_cls.default_action_mode
    paper = is_builtin(cell.policy_cls) and cell.policy_cls.name in paper_labels().values()  # a row of Table I
    where = f"{name} on {cell.spec.env}"
    if mode is None:
        return []
    if cell.spec.dataset is None and mode != Policy.default_action_mode:  # the policy's own choice, not the base's
        why = "as the paper trains it" if paper else "the policy's default_action_mode"
        return [f"[dpbench] {where} trains in {mode} actions ({kind}: {why}); --dataset scripted for absolute ones"]
    if cell.spec.dataset is not None and mode != want:
        why = f"the paper trains it in {want} actions" if paper else f"the policy's default_action_mode is {want}"
        other = scripted_name(data_variant(kind), want) if kind in ROBOMIMIC_SCRIPTED else None
        hint = f" (--dataset {other})" if other else ""
        return [f"[dpbench] note: {where} trains in {mode} actions on {kind} demos; {why}{hint}"]
    return []


def execute(cell: PreparedCell, make_bar: Callable[..., Any] = terminal_bar) -> tuple[str, Any]:
    """Run one prepared cell under its lock: ("ran", record), ("done", record) when another process finished
    it meanwhile, ("busy", holder) when another process holds it, or ("error", message). ``make_bar`` is
    the training progress reporter (``dpbench.train.train``): tqdm, or a worker's ``WorkerBar``."""
    lock = CellLock(cell.lock_dir)
    if not lock.acquire():
        return "busy", lock.holder()
    try:
        done = cell.record_path
        if done.exists():  # finished by another process since this sweep started
            try:
                return "done", read_record(done)
            except ValueError as exc:
                return "error", f"{done}: {exc}; delete the file to rerun this cell"
        # half-written temp files of a killed predecessor (the real files are replaced atomically)
        for tmp in [
            *cell.workdir.glob("*.tmp[0-9]*"),
            *cell.own_record_path.parent.glob(f".{cell.own_record_path.name}.tmp*"),
        ]:
            tmp.unlink(missing_ok=True)
        return "ran", run_cell(cell, make_bar=make_bar)
    except DpbenchError as exc:
        return "error", str(exc)
    except Exception as exc:
        if is_builtin(cell.policy_cls):  # dpbench's own policy: a bug in dpbench, keep the traceback
            raise
        # a policy from outside dpbench raised in its own code: this cell fails, the grid's others go on
        return "error", (
            f"policy {cell.spec.policy} raised {type(exc).__name__} at {raised_at(exc)}: {first_line(exc)}"
            f"{plugin_hint(exc)} (fix it and rerun; changed code trains as a new cell, docs/adding_a_policy.md)"
        )
    finally:
        lock.release()
