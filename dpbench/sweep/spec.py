"""The sweep schema: a grid of benchmark cells, from ``dpbench run`` options or a YAML file.

A grid comes from ``dpbench run --policy a,b --env e --seeds N`` or from a YAML file for
``dpbench sweep CONFIG.yaml``::

    policies: [diffusion, lstm_gmm, ibc]   # required: registered names, entry points or module:Class
    envs: [pusht]                          # default [pusht]
    obs: [keypoints, state]                # optional; default: each env's default obs mode
    seeds: 3                               # N (seeds seed_start .. seed_start+N-1) or a list, e.g. [0, 4]
    seed_start: 0
    preset: quick                          # smoke | quick | paper (default quick)
    dataset: human                         # Push-T: human | scripted | PATH (default: human if present);
                                           # robomimic: scripted[-mh][-delta] | PATH (default: scripted)
    out: results                           # results dir (records/, work/); --out overrides it
    device: cpu                            # cpu | cuda | cuda:N | auto
    set:                                   # overrides for every cell, like --set
      train.eval_every: 1000
    per_policy:                            # per policy: preset, dataset, seeds, set
      ibc: {preset: smoke, set: {train.lr: 1e-4}}
    per_cell:                              # the cells matching every given policy/env/obs/seed get
      - {policy: diffusion, seed: 0, set: {train.steps: 4000}}   # these preset / dataset / set
    grids:                                 # optional: sub-grids, each the settings above (not out,
      - {envs: [lift], dataset: scripted}  # device, video) over the top level's; set and per_policy
      - {envs: [lift], dataset: scripted-mh}   # merge, per_cell appends. The grid is their union.

Settings apply in that order (global, per_policy, per_cell); ``set`` maps merge. Relative paths are
relative to the working directory. A cell is (env, obs, policy, dataset, preset/config, seed); its
record is ``OUT/records/<cell_id>.json``, its checkpoints ``OUT/work/<cell_id>/``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from dpbench.errors import DpbenchError, did_you_mean, first_line
from dpbench.policies import paper_labels
from dpbench.runner import CellSpec


@dataclass
class Sweep:
    """A grid: policies x envs x obs x seeds, shared settings, per-policy and per-cell overrides."""

    policies: list[str]
    envs: list[str] = field(default_factory=lambda: ["pusht"])
    obs: list[str | None] = field(default_factory=lambda: [None])
    seeds: list[int] = field(default_factory=lambda: [0])
    seed_start: int = 0  # where a per_policy `seeds: N` starts
    preset: str = "quick"
    dataset: str | None = None
    out: Path = Path("results")
    device: str = "cpu"
    video: bool = False
    set: dict[str, str] = field(default_factory=dict)
    per_policy: dict[str, dict[str, Any]] = field(default_factory=dict)
    per_cell: list[dict[str, Any]] = field(default_factory=list)
    # Sub-grids (the YAML's `grids`); the grid is their union, with this sweep's out, device and video.
    parts: list[Sweep] = field(default_factory=list)
    # In a sub-grid: how many of its first per_cell entries are the top level's, which need only match a cell
    # of some sub-grid (its own entries must match one of its cells).
    shared_per_cell: int = 0

    TOP_KEYS = (
        "policies",
        "envs",
        "obs",
        "seeds",
        "seed_start",
        "preset",
        "dataset",
        "out",
        "device",
        "video",
        "set",
        "per_policy",
        "per_cell",
        "grids",
    )
    POLICY_KEYS = ("preset", "dataset", "seeds", "set")
    MATCH_KEYS = ("policy", "env", "obs", "seed")
    CELL_KEYS = ("preset", "dataset", "set")

    @classmethod
    def from_yaml(cls, path: Path) -> Sweep:
        """Read and check a sweep file (schema in this module's docstring).

        Raises DpbenchError naming the file and the first problem (unreadable, not YAML, unknown key, ...)."""
        try:
            doc = yaml.safe_load(Path(path).read_text())
        except OSError as exc:
            raise DpbenchError(f"cannot read sweep file {path}: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or first_line(exc)
            raise DpbenchError(f"{path}: not valid YAML{where} ({problem})") from None
        if not isinstance(doc, dict):
            raise DpbenchError(f"{path}: a sweep file is a mapping with at least 'policies'")
        _check_keys(doc, cls.TOP_KEYS, str(path))
        grids = doc.pop("grids", None)
        if grids is None:
            return cls._from_doc(doc, str(path))
        if not isinstance(grids, list) or not grids or not all(isinstance(g, dict) for g in grids):
            raise DpbenchError(f"{path}: grids is a list of mappings, each a sub-grid's settings")
        shared = _checked_per_cell(doc.get("per_cell"), f"{path}: per_cell")
        parts = []
        for i, grid in enumerate(grids):
            where = f"{path}: grids[{i}]"
            _check_keys(grid, tuple(k for k in cls.TOP_KEYS if k not in ("out", "device", "video", "grids")), where)
            own_cells = _checked_per_cell(grid.get("per_cell"), f"{where}: per_cell")
            merged = {**doc, **grid}
            merged["set"] = {**(doc.get("set") or {}), **(grid.get("set") or {})}
            top_pp, grid_pp = doc.get("per_policy") or {}, grid.get("per_policy") or {}
            if not isinstance(top_pp, dict) or not isinstance(grid_pp, dict):
                raise DpbenchError(f"{where}: per_policy is a mapping (policy: settings)")
            policies = set(_names(merged.get("policies") or [], f"{where}: policies"))
            # the top level's per_policy covers the policies this sub-grid has; its own must all match
            names = [k for k in dict.fromkeys([*top_pp, *grid_pp]) if k in grid_pp or k in policies]
            merged["per_policy"] = {}
            for k in names:
                top, own = dict(top_pp.get(k) or {}), dict(grid_pp.get(k) or {})
                merged["per_policy"][k] = {**top, **own, "set": {**(top.get("set") or {}), **(own.get("set") or {})}}
            merged["per_cell"] = [*shared, *own_cells]
            part = cls._from_doc(merged, where)
            part.shared_per_cell = len(shared)
            parts.append(part)
        whole = parts[0]
        return cls(
            policies=list(dict.fromkeys(p for part in parts for p in part.policies)),
            envs=list(dict.fromkeys(e for part in parts for e in part.envs)),
            out=whole.out,
            device=whole.device,
            video=whole.video,
            parts=parts,
        )

    @classmethod
    def _from_doc(cls, doc: dict[str, Any], path: str) -> Sweep:
        """One grid from its checked settings (``from_yaml``'s top level, or a merged sub-grid)."""
        if not doc.get("policies"):
            raise DpbenchError(f"{path}: 'policies' is required, e.g. policies: [diffusion, lstm_gmm]")
        seed_start = _int(doc.get("seed_start", 0), f"{path}: seed_start")
        per_policy = doc.get("per_policy") or {}
        per_cell = doc.get("per_cell") or []
        if not isinstance(per_policy, dict) or not isinstance(per_cell, list):
            raise DpbenchError(f"{path}: per_policy is a mapping (policy: settings) and per_cell a list of mappings")
        for name, settings in per_policy.items():
            _check_keys(settings, cls.POLICY_KEYS, f"{path}: per_policy.{name}")
        for i, entry in enumerate(per_cell):
            _check_keys(entry, cls.MATCH_KEYS + cls.CELL_KEYS, f"{path}: per_cell[{i}]")
        return cls(
            policies=_names(doc["policies"], "policies"),
            envs=_names(doc.get("envs", ["pusht"]), "envs"),
            obs=_names(doc["obs"], "obs") if doc.get("obs") else [None],
            seeds=_seed_list(doc.get("seeds", 1), seed_start, f"{path}: seeds"),
            seed_start=seed_start,
            preset=str(doc.get("preset", "quick")),
            dataset=None if doc.get("dataset") is None else str(doc["dataset"]),
            out=Path(str(doc.get("out", "results"))),
            device=str(doc.get("device", "cpu")),
            video=bool(doc.get("video", False)),
            set=_overrides(doc.get("set"), f"{path}: set"),
            per_policy={str(k): dict(v or {}) for k, v in per_policy.items()},
            per_cell=[dict(e) for e in per_cell],
        )

    def specs(self, command: str = "", progress: bool = True) -> list[CellSpec]:
        """Every cell of the grid, overrides applied, in policy, env, obs, seed order (duplicates dropped).
        ``command`` and ``progress`` are copied into each spec; a sweep of sub-grids lists each sub-grid's
        cells in turn (a cell that two sub-grids give with the same dataset, preset and overrides, once).
        Raises DpbenchError for per-policy or per-cell entries that match nothing: a sub-grid's own entries in
        that sub-grid, the top level's anywhere in the sweep."""
        if not self.parts:
            specs, used, _ = self._grid_specs(command, progress)
            _check_used(self.per_cell, used, range(len(used)), "the grid")
            return specs
        specs, seen_cells = [], {}
        shared_used = [False] * self.parts[0].shared_per_cell
        for n, part in enumerate(self.parts):
            part_specs, used, dataset_by = part._grid_specs(command, progress)
            shared_used = [a or b for a, b in zip(shared_used, used, strict=False)]
            own = range(part.shared_per_cell, len(used))
            _check_used(part.per_cell, used, own, "its sub-grid", f"grids[{n}].", part.shared_per_cell)
            for part_spec, by in zip(part_specs, dataset_by, strict=True):
                # out, device and video are the whole sweep's (a sub-grid cannot set them)
                spec = replace(part_spec, out=self.out, device=self.device, video=self.video)
                key = (spec.policy, spec.env, spec.obs, spec.seed, spec.dataset, spec.preset)
                key += tuple(sorted(spec.overrides.items()))
                shared = by if by is not None and by < part.shared_per_cell else None  # a top-level entry's
                if key in seen_cells:
                    first, first_shared = seen_cells[key]
                    entry = shared if shared is not None else first_shared
                    if entry is not None:  # a top-level dataset made two sub-grids' cells one: say so
                        raise DpbenchError(
                            f"per_cell[{entry}] sets the dataset of {spec.policy} {spec.env} seed {spec.seed} in "
                            f"grids[{first}] and grids[{n}] alike, which makes them one cell; put the entry inside "
                            "the sub-grid it is for (its own per_cell)"
                        )
                    continue
                seen_cells[key] = (n, shared)
                specs.append(spec)
        _check_used(self.parts[0].per_cell, shared_used, range(len(shared_used)), "any sub-grid")
        return specs

    def _grid_specs(self, command: str, progress: bool) -> tuple[list[CellSpec], list[bool], list[int | None]]:
        """This grid's cells (no sub-grids), which per_cell entries matched one of them, and per cell the
        per_cell entry that set its dataset (None: the grid's or its policy's)."""
        unknown = [p for p in self.per_policy if p not in self.policies]
        if unknown:
            raise DpbenchError(
                f"per_policy names {', '.join(map(repr, unknown))}, not in policies: {', '.join(self.policies)}"
                f"{did_you_mean(unknown, self.policies, paper_labels())}"
            )
        used = [False] * len(self.per_cell)
        specs, seen, dataset_by = [], set(), []
        for policy in self.policies:
            pol = self.per_policy.get(policy, {})
            seeds = (
                _seed_list(pol["seeds"], self.seed_start, f"per_policy.{policy}.seeds")
                if "seeds" in pol
                else self.seeds
            )
            for env in self.envs:
                for obs in self.obs:
                    for seed in seeds:
                        settings = {
                            "preset": self.preset,
                            "dataset": self.dataset,
                            "set": {**self.set, **_overrides(pol.get("set"), f"per_policy.{policy}.set")},
                        }
                        settings.update({k: pol[k] for k in ("preset", "dataset") if k in pol})
                        here = {"policy": policy, "env": env, "obs": obs, "seed": seed}
                        by = None
                        for i, entry in enumerate(self.per_cell):
                            if _matches(entry, here, self.MATCH_KEYS):
                                used[i] = True
                                by = i if "dataset" in entry else by
                                settings.update({k: entry[k] for k in ("preset", "dataset") if k in entry})
                                settings["set"] = {
                                    **settings["set"],
                                    **_overrides(entry.get("set"), f"per_cell[{i}].set"),
                                }
                        key = (policy, env, obs, seed)
                        if key in seen:
                            continue
                        seen.add(key)
                        dataset_by.append(by)
                        specs.append(
                            CellSpec(
                                policy=policy,
                                env=env,
                                seed=seed,
                                preset=str(settings["preset"]),
                                obs=obs,
                                dataset=None if settings["dataset"] is None else str(settings["dataset"]),
                                overrides=settings["set"],
                                out=self.out,
                                video=self.video,
                                device=self.device,
                                progress=progress,
                                command=command,
                            )
                        )
        return specs, used, dataset_by


def _matches(entry: dict[str, Any], here: dict[str, Any], keys: tuple[str, ...]) -> bool:
    """Whether a per_cell entry's given match keys all equal the cell's."""
    return all(str(entry[k]) == str(here[k]) for k in keys if k in entry)


def _checked_per_cell(value: Any, where: str) -> list[dict[str, Any]]:
    """A sweep file's per_cell list (top level or a sub-grid's), each entry's keys and ``set`` checked and named
    as the file has them (``where[i]``), before sub-grids merge the top level's entries into theirs."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise DpbenchError(f"{where} is a list of mappings, e.g. - {{policy: diffusion, seed: 0, set: {{...}}}}")
    for i, entry in enumerate(value):
        _check_keys(entry, Sweep.MATCH_KEYS + Sweep.CELL_KEYS, f"{where}[{i}]")
        _overrides(entry.get("set"), f"{where}[{i}].set")
    return value


def _check_used(
    per_cell: list[dict[str, Any]], used: list[bool], which: range, grid: str, prefix: str = "", offset: int = 0
) -> None:
    """DpbenchError naming the first of the ``which`` per_cell entries that matched no cell of ``grid``; the file
    calls it ``{prefix}per_cell[i - offset]`` (a sub-grid's own entries follow the top level's in its list)."""
    idle = [i for i in which if not used[i]]
    if idle:
        i = idle[0]
        raise DpbenchError(f"{prefix}per_cell[{i - offset}] ({per_cell[i]}) matches no cell of {grid}")


def _check_keys(mapping: Any, allowed: tuple[str, ...], where: str) -> None:
    """A mapping whose keys are all in ``allowed``; DpbenchError otherwise."""
    if not isinstance(mapping, dict):
        raise DpbenchError(f"{where}: expected a mapping, got {mapping!r}")
    bad = [k for k in mapping if k not in allowed]
    if bad:
        raise DpbenchError(
            f"{where}: unknown key {bad[0]!r}; allowed: {', '.join(allowed)}{did_you_mean(bad[:1], allowed)}"
        )


def _int(value: Any, where: str) -> int:
    """An int that is not a bool; DpbenchError otherwise."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise DpbenchError(f"{where} must be an integer, got {value!r}")
    return value


def _names(value: Any, where: str) -> list[str]:
    """A comma string or a non-empty list, as stripped names."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise DpbenchError(f"{where}: expected a list of names, got {value!r}")
    return [str(v).strip() for v in items if str(v).strip()]


def _seed_list(value: Any, start: int, where: str) -> list[int]:
    """N means seeds start..start+N-1; a list is taken as is."""
    if isinstance(value, list):
        seeds = [_int(v, where) for v in value]
        if not seeds or min(seeds) < 0:
            raise DpbenchError(f"{where}: expected non-negative seeds, got {value!r}")
        return sorted(set(seeds))
    n = _int(value, where)
    if n <= 0:
        raise DpbenchError(f"{where} must be a positive number of seeds or a list of seeds, got {n}")
    return list(range(start, start + n))


def _overrides(value: Any, where: str) -> dict[str, str]:
    """YAML `set:` mappings become --set strings, so records and config hashes match the CLI's."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise DpbenchError(f"{where}: expected a mapping like {{train.steps: 2000}}, got {value!r}")
    return {str(k): ",".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v) for k, v in value.items()}


def select_cells(
    specs: list[CellSpec],
    envs: list[str] | None = None,
    policies: list[str] | None = None,
    variants: list[str] | None = None,
) -> list[CellSpec]:
    """The cells of ``specs`` in every given selection (None: any), in their order: ``dpbench sweep FILE --env
    square --variant ph`` runs a part of a grid, its cells and records exactly the whole grid's. A policy matches by
    the name the grid gives it or its class's (``diffusion_cnn`` is ``diffusion``); a variant is the demos' (``mh``
    for ``scripted-mh*``, else ``ph``; ``data_variant``). Raises DpbenchError naming a selected value the grid
    does not have, and the values it has, or a combination that matches no cell."""
    from dpbench.data.registry import data_variant
    from dpbench.policies import available_policies, get_policy_class

    registered = available_policies()  # scans the entry points: once, not per cell
    names = {n: get_policy_class(n).name if n in registered or ":" in n else n for n in {s.policy for s in specs}}
    names |= {n: get_policy_class(n).name if n in registered or ":" in n else n for n in policies or ()}
    keys = {
        "env": (envs, lambda s: s.env),
        "policy": ([names[p] for p in policies] if policies else None, lambda s: names[s.policy]),
        "variant": (variants, lambda s: data_variant(s.dataset or "")),
    }
    for what, (wanted, of) in keys.items():
        held = list(dict.fromkeys(of(s) for s in specs))
        missing = [w for w in wanted or () if w not in held]
        if missing:
            labels = paper_labels() if what == "policy" else None
            raise DpbenchError(
                f"--{what} {', '.join(map(str, missing))}: the grid has no such cell; its {what} values: "
                + ", ".join(map(str, held))
                + did_you_mean(map(str, missing), map(str, held), labels)
            )
    chosen = [s for s in specs if all(not wanted or of(s) in wanted for wanted, of in keys.values())]
    if not chosen:
        asked = " ".join(f"--{k} {','.join(map(str, w))}" for k, (w, _) in keys.items() if w)
        raise DpbenchError(f"the grid has no cell with all of {asked} (each alone matches some)")
    return chosen
