"""The ``dpbench`` subcommands' implementations (``cmd_*``), called by ``dpbench.cli.main`` with the
parsed arguments. Each returns an exit status; user-facing problems raise ``DpbenchError``.

Heavy modules (torch, robosuite, matplotlib) are imported inside the commands that need them, so
``dpbench --help`` and ``dpbench list`` start in a fraction of a second.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path
from typing import Any

from dpbench.errors import DpbenchError, check_output_file
from dpbench.host import default_threads, device_name, resolve_device

DEFAULT_OUT = "results"


def _parse_overrides(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise DpbenchError(f"--set expects KEY=VALUE (e.g. train.steps=2000), got {item!r}")
        key, value = key.strip(), value.strip()
        if key in out:
            if not _same_value(out[key], value):  # which one a run used would otherwise hide in argv order
                raise DpbenchError(f"--set {key} is given twice ({out[key]!r} and {value!r}); keep one")
            continue  # the same value (1e-4 and 0.0001): the first spelling stays, as the record names it
        out[key] = value
    return out


def _same_value(a: str, b: str) -> bool:
    """Whether two ``--set`` values are one value, as text or as numbers."""
    try:
        return a == b or float(a) == float(b)
    except ValueError:
        return False


def split_names(value: str, what: str) -> list[str]:
    """A comma-list option ("a, b" -> ["a", "b"]); DpbenchError naming --WHAT when it holds no name."""
    names = [v.strip() for v in value.split(",") if v.strip()]
    if not names:
        raise DpbenchError(f"--{what} needs at least one name")
    return names


SELECTORS = ("env", "policy", "obs", "variant")  # the options that choose records, in this order


def _filters(args: argparse.Namespace) -> list[tuple[str, list[str]]]:
    """The selection options given, as (option, names) pairs: --env, --policy, --obs, --variant, in that order.
    Raises DpbenchError for an option given no name (``split_names``)."""
    return [(k, split_names(v, k)) for k in SELECTORS if (v := getattr(args, k, None)) is not None]


def _selection(filters: list[tuple[str, list[str]]]) -> tuple[list[str] | None, ...]:
    """``_filters``' pairs as --env, --policy, --obs, --variant lists (None where not given)."""
    given = dict(filters)
    return tuple(given.get(k) for k in SELECTORS)


def _command_line(argv: list[str]) -> str:
    """The command as records store it: the arguments given, with no machine's absolute path (such
    arguments are written relative to the checkout or the cache)."""
    from dpbench.data.registry import portable_path

    return "dpbench " + " ".join(shlex.quote(portable_path(a) if a.startswith("/") else a) for a in argv)


def _run_sweep(sweep, args: argparse.Namespace) -> int:
    """Check the whole grid, run what is missing, print the comparison table (shared by run and sweep)."""
    from dpbench.sweep import check_specs, describe, import_ray, prepare_all, run_grid
    from dpbench.tables import format_table

    if args.address and args.backend != "ray":
        raise DpbenchError("--address is the Ray cluster's address; use it with --backend ray")
    if args.backend == "ray":
        import_ray()  # missing Ray: say so before loading anything
    source = getattr(args, "config", None)  # the sweep file, where the names came from one
    try:
        specs = sweep.specs(_command_line(args.argv), progress=not args.quiet)
    except DpbenchError as exc:
        raise DpbenchError(f"{source}: {exc}" if source else str(exc)) from None
    only = {k: getattr(args, f"only_{k}", None) for k in ("env", "policy", "variant")}
    if any(v is not None for v in only.values()):  # a part of the grid (dpbench sweep --env/--policy/--variant)
        from dpbench.sweep.spec import select_cells

        # `--env ''` is an error, as in `dpbench table`, not the whole grid
        specs = select_cells(specs, *(split_names(v, k) if v is not None else None for k, v in only.items()))
    try:  # a typo stops the grid before its results directory is made or any data is read
        check_specs(specs)
    except DpbenchError as exc:
        raise DpbenchError(f"{source}: {exc}" if source else str(exc)) from None
    if getattr(args, "dry_run", False):  # writes, collects and runs nothing: missing datasets are listed
        from dpbench.host import cpu_capability, cpu_family, usable_cores
        from dpbench.records import load_records
        from dpbench.sweep.cells import plan_all
        from dpbench.sweep.dryrun import dry_run_report
        from dpbench.sweep.evidence import RESULTS, rate_records

        planned = plan_all(specs)
        # rates: the sweep's records, and the checkout's results/ when the sweep writes elsewhere, superseded too
        dirs = dict.fromkeys(p.resolve() for p in (sweep.out, RESULTS) if (p / "records").is_dir())
        records = rate_records(list(dirs))
        out_records = load_records(sweep.out)[0] if (sweep.out / "records").is_dir() else []
        print(
            f"[dpbench] {len(planned)} cell(s) in {getattr(args, 'config', None) or 'the grid'}, nothing run; "
            f"results dir {sweep.out.resolve()} (done and recorded cells are its records). Each line: the cell's "
            "state (done, recorded, running, resume, new, blocked); for a cell to run, the CPU time it should take "
            "(training + evaluation CPU-minutes), its cell id (where its demos are not collected yet: 'policy "
            "task/obs seed N' and the missing file) and, last, [where the rates come from]; for a done or "
            "recorded cell, the wall time it took as its record measured it (training + evaluation wall minutes) "
            "and its cell id or record:"
        )
        here = usable_cores()
        cores = args.workers or here
        if getattr(args, "backend", "local") == "local" and cores > here:  # a Ray cluster has its own
            print(
                f"[dpbench] --workers {cores} on this machine's {here} usable core(s): the wall time counts {here}, "
                "since more workers than cores only share them"
            )
            cores = here
        from dpbench.sweep.backends import plan_workers

        # the threads a local worker would really give its cell (--threads included); Ray: one per cell
        threads = plan_workers(len(planned), cores)[1] if getattr(args, "backend", "local") == "local" else 1
        if threads > (useful := max(1, here // cores)):  # only a local pool can oversubscribe this machine's cores
            print(
                f"[dpbench] {cores} worker(s) x {threads} torch threads on {here} usable core(s): threads beyond the "
                f"cores only share them, so the wall time's lower bound counts {useful} a cell"
            )
            threads = useful
        for line in dry_run_report(planned, records, cores, out_records, cpu_capability(), cpu_family(), threads):
            print(line)
        return 0
    _check_writable(sweep.out)
    skipped: list[str] | None = [] if getattr(args, "skip_blocked", False) else None
    cells = prepare_all(specs, skipped)
    for line in skipped or []:
        print(f"[dpbench] skipped {line}")
    if not cells:
        raise DpbenchError("no cell of the grid can run here (each is listed above as skipped)")
    for line in describe(cells):
        print(line)
    if args.backend != "ray":  # on Ray, "auto" resolves on each worker, not here
        _warn_paper_on_cpu([c for c in cells if not c.record_path.exists()])
    records = run_grid(cells, backend=args.backend, workers=args.workers, address=args.address, progress=not args.quiet)
    print()
    print(format_table(records, with_paper=True))
    return 0


def _warn_paper_on_cpu(cells: list[Any]) -> None:
    """One line on stderr when a paper-preset cell among ``cells`` (those still to train) will train on this
    machine's CPU: the paper's schedules (hundreds of thousands of steps) take days there, and ``--device``
    defaults to cpu."""
    if any(c.spec.preset == "paper" and resolve_device(c.spec.device).type == "cpu" for c in cells):
        print(
            "[dpbench] note: the paper preset on the CPU takes days per cell (its full training schedule); "
            "pass --device cuda (or auto) on a GPU machine, or --preset quick for a CPU-sized run",
            file=sys.stderr,
        )


def _all_episodes(overrides: dict[str, str], flag: bool) -> dict[str, str]:
    """``--all-episodes`` is ``train.train_episodes=all``; refuse a --set that says otherwise."""
    if not flag:
        return overrides
    if overrides.get("train.train_episodes", "all") != "all":
        raise DpbenchError(
            f"--all-episodes contradicts --set train.train_episodes={overrides['train.train_episodes']}; pass one"
        )
    return {**overrides, "train.train_episodes": "all"}


def cmd_run(args: argparse.Namespace) -> int:
    """``dpbench run``: the policies x envs x seeds grid from the flags, run as ``_run_sweep`` (finished cells skipped,
    unfinished ones resumed); returns 0. Bad names or values raise DpbenchError."""
    from dpbench.sweep import Sweep

    sweep = Sweep(
        policies=split_names(args.policy, "policy"),
        envs=split_names(args.env, "env"),
        obs=[args.obs],
        seeds=list(range(args.seed_start, args.seed_start + args.seeds)),
        preset=args.preset,
        dataset=args.dataset,
        out=Path(args.out),
        device=args.device,
        video=args.video,
        set={**_all_episodes(_parse_overrides(args.set), args.all_episodes)},
    )
    return _run_sweep(sweep, args)


def cmd_sweep(args: argparse.Namespace) -> int:
    """``dpbench sweep FILE``: the grid of a sweep YAML (``--out`` replaces its results dir), run as ``dpbench run``
    runs its grid; returns 0. A bad file raises DpbenchError."""
    from dpbench.sweep import Sweep

    sweep = Sweep.from_yaml(Path(args.config))
    if args.out:
        sweep.out = Path(args.out)
    return _run_sweep(sweep, args)


def cmd_config(args: argparse.Namespace) -> int:
    """``dpbench config POLICY``: print the policy and train configs that a preset builds for a task and obs mode
    (with ``--set`` overrides), beside the paper preset's values and each field's documentation; returns 0. Raises
    DpbenchError for a config ``dpbench run`` would refuse: the policy's (its ``check_config``, and a build with
    the ``policy.*`` overrides) or the train config's (``config.check_train_config``)."""
    from dpbench.config import build_configs, describe_length
    from dpbench.config_docs import describe
    from dpbench.data.registry import scripted_name
    from dpbench.policies import get_policy_class
    from dpbench.preflight import check_configs
    from dpbench.runner import policy_action_mode
    from dpbench.tasks import get_task

    cls = get_policy_class(args.policy)
    task = get_task(args.env).for_variant(args.variant)  # DpbenchError for mh on a ph-only task
    image = bool(task.obs_mode(args.obs).spec.image_keys)
    overrides = _parse_overrides(args.set)
    pcfg, tcfg = build_configs(cls, args.preset, overrides, image_obs=image, task=task.name, variant=args.variant)
    action_mode = policy_action_mode(task, cls)
    spec = task.obs_mode(args.obs, action_mode).spec  # the action space a run without --dataset trains in
    check_configs(cls, spec, pcfg, tcfg, overrides, task.name)  # what run refuses, config refuses too
    paper = (
        build_configs(cls, "paper", image_obs=image, task=task.name, variant=args.variant)
        if "paper" in cls.presets and args.preset != "paper"
        else (None, None)
    )
    print(
        f"{cls.name} ({cls.__module__}:{cls.__qualname__}), preset {args.preset}, env {task.name}/"
        f"{args.obs or task.default_obs}"
        + (f", {args.variant} demos" if action_mode is not None else "")  # Push-T has one (human) dataset
        + (f", overrides {overrides}" if overrides else "")
    )
    if action_mode is not None:
        ran = "; what dpbench run uses without --dataset" if args.variant == "ph" else ""
        print(
            f"demos: --dataset {scripted_name(args.variant, action_mode)} ({action_mode} actions, the policy's "
            f"default_action_mode{ran})"
        )
    for title, cfg, ref, scope in (("policy", pcfg, paper[0], "policy"), ("train", tcfg, paper[1], "train")):
        rows = [(f"{scope}.{name}", *rest) for name, *rest in describe(cfg, ref)]
        header = ("field", "type", args.preset, "paper" if ref is not None else "", "meaning")
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
        print(f"\n{title} config ({type(cfg).__name__}):")
        for row in [header, *rows]:
            print("  " + "  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths)) + "  " + row[4])
    print("\ntraining length: " + describe_length(cls, args.preset, task.name, args.variant, image, overrides, tcfg))
    print("\nSet any field with --set policy.FIELD=VALUE / --set train.FIELD=VALUE (dpbench run, dpbench sweep).")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    """``dpbench eval CHECKPOINT``: evaluate a saved policy under the paper's protocol and print the score and success
    rate with 95% intervals and the timing; returns 0. Raises DpbenchError for a checkpoint whose shapes do not fit
    the env's obs mode or that was trained on another env."""
    import torch

    from dpbench.checkpoint import load_policy, read_checkpoint_meta
    from dpbench.evaluate import evaluate
    from dpbench.tasks import checkpoint_task

    video = Path(args.video) if args.video else None
    if video is not None:  # checked before the episodes run
        check_output_file("--video", video, (".gif",), "a GIF")
    torch.set_num_threads(default_threads())
    meta = read_checkpoint_meta(args.checkpoint)
    task = checkpoint_task(meta, args.env)  # at the horizon of the demonstrations it learnt from
    if meta.get("env") not in (None, task.name):  # before the obs mode, which the other task may not have
        raise DpbenchError(f"{args.checkpoint}: checkpoint was trained on env '{meta['env']}', not '{task.name}'")
    obs = args.obs or meta.get("obs") or task.default_obs
    mode = task.obs_mode(obs, meta.get("action_mode"))
    device = resolve_device(args.device)  # before the checkpoint loads: a bad name fails fast
    policy, meta = load_policy(args.checkpoint, expect_spec=mode.spec, overrides=_parse_overrides(args.set))
    policy.to(device)
    res = evaluate(
        policy,
        task,
        mode,
        n_episodes=args.episodes,
        seed_start=args.seed_start,
        sampling_seed=args.seed,
        video_path=video,
        progress=not args.quiet,
        desc=f"{meta.get('policy', '?')}/{task.name} eval",
    )
    first = task.test_seed_start if args.seed_start is None else args.seed_start
    step = f", step {meta['step']}" if "step" in meta else ""
    # saved output names what it scored: the checkpoint, the task and the episodes' seeds
    print(
        f"{meta.get('policy', '?')} ({args.checkpoint}{step}) on {task.name}/{obs}: test seeds {first}-"
        f"{first + res.n_episodes - 1}, sampling seed {args.seed}"
    )
    print(f"score (mean max reward) {res.score:.3f}  95% CI [{res.score_ci95[0]:.3f}, {res.score_ci95[1]:.3f}]")
    print(f"success rate {res.success_rate:.3f}  95% CI [{res.success_ci95[0]:.3f}, {res.success_ci95[1]:.3f}]")
    print(
        f"{res.n_episodes} episodes in {res.wall_s:.1f} s; "
        f"chunk latency {res.chunk_latency_ms:.1f} ms (batch {res.n_episodes}, {device_name(device)})"
    )
    return 0


def cmd_table(args: argparse.Namespace) -> int:
    """``dpbench table``: print the table of the records under ``--out`` (filtered by --env/--policy/--obs/--variant)
    and regenerate OUT/README.md (by default only for the default results dir); returns 0. Raises DpbenchError when
    no records match or the README cannot be written."""
    from dpbench.policies import record_policy_names
    from dpbench.report import write_results_readme
    from dpbench.results import load_all, select_records
    from dpbench.tables import format_table

    try:
        records = load_all(args.out)
    except DpbenchError as exc:  # e.g. --out table.csv: the table itself goes to stdout
        raise DpbenchError(f"{exc} (the table prints to stdout: redirect it to save it)") from None
    filters = _filters(args)
    envs, policies, obs, variants = _selection(filters)
    if args.claims and args.layout == "pivot":
        raise DpbenchError(
            "--claims compares the policies in the paper's layout; "
            "drop --layout pivot (or --claims for the pivot table)"
        )
    paper = args.layout == "paper" or args.claims
    # the paper's layout shows a selection without records too: the paper's numbers, each "no record"
    empty = paper and bool(envs or policies or obs or variants)
    chosen = select_records(records, envs, policies, args.out, obs, allow_empty=empty, variants=variants)
    if paper:
        from dpbench.paper_cells import ColumnFilter, check_paper_selection
        from dpbench.paper_table import format_paper_table

        check_paper_selection(envs, obs)  # names known (select_records refused typos), but maybe not the paper's
        selection = " ".join(f"--{k} {','.join(names)}" for k, names in filters)
        columns: ColumnFilter | None = envs
        if variants:  # the paper's columns of those variants (of --env's tasks): (task, variant) pairs
            from dpbench.tasks import TASKS

            columns = [(t, v) for t in envs or TASKS for v in variants]
        # rows are the names records carry: a module:Class reference or an alias selects its class's `name`
        names = record_policy_names(policies, {r["policy"] for r in records}) if policies else None
        print(format_paper_table(chosen, args.format, args.claims, columns, selection, obs, names))
    else:
        print(format_table(chosen, args.format, with_paper=args.with_paper))
    write = args.write_readme
    if write is None:  # default: regenerate the project's results/README.md, leave other dirs alone
        write = Path(args.out).resolve() == Path(DEFAULT_OUT).resolve()
    if write:
        try:
            readme = write_results_readme(Path(args.out), records)
            print(f"[dpbench] wrote {readme}", file=sys.stderr)
        except OSError as exc:
            raise DpbenchError(f"cannot write {args.out}/README.md ({exc.strerror}); pass --no-write-readme") from None
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    """``dpbench plot``: write the figures (PNG + SVG) of the matching records to ``--figdir`` (default OUT/figures)
    and print their paths; returns 0. Raises DpbenchError when no records match or the directory is not writable."""
    from dpbench.plots import plot_all
    from dpbench.results import load_all, select_records

    chosen = _filters(args)
    envs, policies, obs, variants = _selection(chosen)
    records = select_records(load_all(args.out), envs, policies, args.out, obs, variants=variants)
    figdir = Path(args.figdir) if args.figdir else Path(args.out) / "figures"
    if not args.figdir and chosen:
        # a selection's scores and latency figures would overwrite the whole results' under the same names
        parts = [f"{k}-{'+'.join(sorted(names))}" for k, names in chosen]
        figdir = figdir / ("selection_" + "_".join(parts))
        print(f"[dpbench] a selection: its figures go to {figdir} (pass --figdir to choose)", file=sys.stderr)
    _check_writable(figdir)
    for path in plot_all(records, figdir):
        print(path)
    return 0


def _check_writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".dpbench-write-test-{os.getpid()}"  # per process: concurrent runs share a results dir
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise DpbenchError(f"results directory {out} is not writable ({exc.strerror}); pass --out DIR") from None
