"""The dataset and listing subcommands (``dpbench list``, ``data info``, ``collect``), called by
``dpbench.cli.main`` like the others in ``dpbench.commands``; each returns an exit status, and user-facing
problems raise ``DpbenchError``. Heavy modules are imported inside the commands, so ``dpbench list`` starts fast.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dpbench.commands import split_names
from dpbench.errors import DatasetMissing, DpbenchError, check_output_file

if TYPE_CHECKING:
    from dpbench.tasks import Task


def cmd_list(args: argparse.Namespace) -> int:
    """``dpbench list``: print the envs (and whether registered), policies and datasets; returns 0."""
    import gymnasium as gym

    from dpbench.data.registry import list_datasets
    from dpbench.envs import PH_ONLY
    from dpbench.policies import available_policies, load_problem
    from dpbench.tasks import TASKS

    print("envs:")
    for name, task in TASKS.items():
        registered = "registered" if task.gym_id in gym.registry else "NOT registered"
        mh = task.gym_id if name in PH_ONLY else task.for_variant("mh").gym_id
        print(
            f"  {name:<12} {task.gym_id}{f' (mh: {mh})' if mh != task.gym_id else ''} ({registered}); "
            f"obs modes: {', '.join(task.obs_modes)} (default {task.default_obs})"
        )
    print("policies:")
    for name, ref in sorted(available_policies().items()):
        problem = load_problem(name, ref)
        print(f"  {name:<24} {ref}{f'  (does not load: {problem})' if problem else ''}")
    print("datasets:")
    datasets = list_datasets()
    width = max((len(name) for name, _, _ in datasets), default=0)
    for name, env, where in datasets:
        print(f"  {name:<{width}} env {env}: {where}")
    return 0


def cmd_data_info(args: argparse.Namespace) -> int:
    """``dpbench data info DATASET [--env ENV]``: a dataset's episodes, steps, keys (shape, dtype) and content hash
    (``--json``: the summary as JSON); returns 0. DATASET is a path or a name ``dpbench list`` gives for ``--env``
    (``human``, ``scripted-delta``, ...), resolved as ``--dataset`` is but never collected. A name not collected
    yet, an unknown name or a file that does not load raises DpbenchError."""
    from dpbench.data.registry import data_variant, portable_path, resolve_dataset
    from dpbench.tasks import get_task

    get_task(args.env)  # an unknown --env: its own error, with the valid names
    keys = split_names(args.keys, "key") if args.keys else None
    try:
        ref = resolve_dataset(args.env, args.dataset, keys, progress=False, collect=False)
    except DatasetMissing as e:
        mode = f" --action-mode {e.action_mode}" if e.action_mode else ""
        variant = " --variant mh" if data_variant(e.kind) == "mh" else ""
        raise DpbenchError(
            f"{e} (it would be {e.path}); collect it with `dpbench collect --env {args.env}{variant}{mode}`"
        ) from None
    info = ref.store.summary()
    if args.json:
        print(json.dumps(info, indent=1))
        return 0
    named = f" for {args.env}: {portable_path(ref.path)}" if ref.kind != "path" else ""
    print(f"dataset:   {args.dataset}{named}")
    print(f"episodes:  {info['episodes']}")
    print(
        f"steps:     {info['steps']}  (episode length min/mean/max {info['episode_length']['min']}/"
        f"{info['episode_length']['mean']:.1f}/{info['episode_length']['max']})"
    )
    print("keys:")
    for k, v in info["keys"].items():
        print(f"  {k:<12} {tuple(v['shape'])} {v['dtype']}")
    over = "these keys" if args.keys else "all keys; a record's hash covers its dataset.keys: pass them as --keys"
    print(f"hash:      {info['content_hash']}  (sha256 over {over})")
    return 0


def cmd_collect(args: argparse.Namespace) -> int:
    """Scripted demonstrations into robomimic-layout hdf5 (Push-T, or a robomimic task)."""
    from dpbench.data.collect import collect_pusht
    from dpbench.data.registry import DEFAULT_SCRIPTED_EPISODES, scripted_pusht_path
    from dpbench.tasks import get_task

    task = get_task(args.env)
    if args.start_seed and not args.out:  # the cache path names no seed: --dataset scripted would read these demos
        raise DpbenchError(
            f"--start-seed {args.start_seed} collects other demos than the standard set, which `--dataset scripted` "
            "reads from the cache dir; write them elsewhere with --out PATH and train on them with --dataset PATH"
        )
    if args.out:  # the cache's default file is rebuilt from the same seeds; a user's own file may hold other demos
        out = Path(args.out)
        check_output_file("--out", out, (".hdf5", ".h5"), "robomimic-layout hdf5")
        if out.exists() and not args.overwrite:
            raise DpbenchError(f"--out {args.out} exists; pass --overwrite to replace it, or choose another path")
    if task.name == "pusht":
        if args.variant != "ph" or args.camera or args.action_mode != "abs":
            raise DpbenchError("Push-T's demonstrator has no --variant, --camera or --action-mode")
        episodes = args.episodes or DEFAULT_SCRIPTED_EPISODES
        path = Path(args.out) if args.out else scripted_pusht_path(episodes)
        stats = collect_pusht(episodes, path, start_seed=args.start_seed, progress=not args.quiet)
    else:
        path, stats = _collect_robomimic(args, task)
    print(
        f"wrote {path}: {stats['kept']} episodes, {stats['steps']} steps; demonstrator success "
        f"{stats['success_rate']:.1%} ({stats['kept']}/{stats['tried']}); {stats['wall_s']:.0f} s "
        f"({stats['steps_per_s']:.0f} steps/s, {stats['workers']} worker{'s' * (stats['workers'] != 1)})"
    )
    return 0


def _collect_robomimic(args: argparse.Namespace, task: Task) -> tuple[Path, dict[str, Any]]:
    """``dpbench collect`` on a robomimic task: (the file written, ``collect_robomimic``'s statistics)."""
    from dpbench.data.collect import collect_robomimic
    from dpbench.data.registry import SCRIPTED_EPISODES, scripted_robomimic_path
    from dpbench.host import usable_cores

    cameras = tuple(sorted(split_names(args.camera, "camera"))) if args.camera else ()
    episodes = args.episodes or SCRIPTED_EPISODES[args.variant]
    path = (
        Path(args.out)
        if args.out
        else scripted_robomimic_path(task.name, args.variant, cameras, episodes, action_mode=args.action_mode)
    )
    stats = collect_robomimic(
        task.name,
        episodes,
        path,
        args.variant,
        cameras,
        start_seed=args.start_seed,
        workers=args.workers or usable_cores(),
        progress=not args.quiet,
        action_mode=args.action_mode,
    )
    return path, stats
