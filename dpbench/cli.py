"""The ``dpbench`` command line: list | data | collect | run | sweep | eval | table | plot.

User-facing problems raise ``DpbenchError`` and are printed here in one line with exit status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import sys
import threading
from pathlib import Path

from dpbench.errors import DpbenchError
from dpbench.host import THREADS_ENV, default_threads

DEFAULT_OUT = "results"


def _parse_overrides(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise DpbenchError(f"--set expects KEY=VALUE (e.g. train.steps=2000), got {item!r}")
        out[key.strip()] = value.strip()
    return out


def _positive(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}") from None
    if n <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {n}")
    return n


def cmd_list(args: argparse.Namespace) -> int:
    """``dpbench list``: print the envs (and whether registered), policies and datasets; returns 0."""
    import gymnasium as gym

    from dpbench.data.registry import list_datasets
    from dpbench.policies import available_policies
    from dpbench.tasks import TASKS

    print("envs:")
    for name, task in TASKS.items():
        registered = "registered" if task.gym_id in gym.registry else "NOT registered"
        print(
            f"  {name:<12} {task.gym_id} ({registered}); obs modes: {', '.join(task.obs_modes)} "
            f"(default {task.default_obs})"
        )
    print("policies:")
    for name, ref in sorted(available_policies().items()):
        print(f"  {name:<24} {ref}")
    print("datasets:")
    for name, env, where in list_datasets():
        print(f"  {name:<12} env {env}: {where}")
    return 0


def cmd_data_info(args: argparse.Namespace) -> int:
    """``dpbench data info PATH``: a dataset's episodes, steps, keys (shape, dtype) and content hash
    (``--json``: the summary as JSON); returns 0. A file that does not load raises DpbenchError."""
    from dpbench.data.episodes import load_episodes

    store = load_episodes(args.path)
    info = store.summary()
    if args.json:
        print(json.dumps(info, indent=1))
        return 0
    print(f"dataset:   {args.path}")
    print(f"episodes:  {info['episodes']}")
    print(
        f"steps:     {info['steps']}  (episode length min/mean/max {info['episode_length']['min']}/"
        f"{info['episode_length']['mean']:.1f}/{info['episode_length']['max']})"
    )
    print("keys:")
    for k, v in info["keys"].items():
        print(f"  {k:<12} {tuple(v['shape'])} {v['dtype']}")
    print(f"hash:      {info['content_hash']}  (sha256 over non-image arrays)")
    return 0


def cmd_collect(args: argparse.Namespace) -> int:
    """Scripted demonstrations into robomimic-layout hdf5 (Push-T, or a robomimic task)."""
    from dpbench.data.collect import collect_pusht, collect_robomimic
    from dpbench.data.registry import scripted_pusht_path, scripted_robomimic_path
    from dpbench.tasks import get_task

    task = get_task(args.env)
    if task.name == "pusht":
        if args.variant != "ph" or args.camera:
            raise DpbenchError(
                "Push-T's demonstrator has no --variant or --camera (its demos always carry the 96x96 image)"
            )
        path = Path(args.out) if args.out else scripted_pusht_path(args.episodes)
        collect_pusht(args.episodes, path, start_seed=args.start_seed, progress=not args.quiet)
        print(f"wrote {path}")
        return 0
    from dpbench.host import usable_cores

    cameras = tuple(sorted(_names(args.camera, "camera"))) if args.camera else ()
    path = Path(args.out) if args.out else scripted_robomimic_path(task.name, args.variant, cameras, args.episodes)
    stats = collect_robomimic(
        task.name,
        args.episodes,
        path,
        args.variant,
        cameras,
        start_seed=args.start_seed,
        workers=args.workers or usable_cores(),
        progress=not args.quiet,
    )
    print(
        f"wrote {path}: {stats['kept']} episodes, {stats['steps']} steps; demonstrator success "
        f"{stats['success_rate']:.1%} ({stats['kept']}/{stats['tried']}); {stats['wall_s']:.0f} s "
        f"({stats['steps_per_s']:.0f} steps/s, {stats['workers']} workers)"
    )
    return 0


def _names(value: str, what: str) -> list[str]:
    names = [v.strip() for v in value.split(",") if v.strip()]
    if not names:
        raise DpbenchError(f"--{what} needs at least one name")
    return names


def _command_line(argv: list[str]) -> str:
    """The command as records store it: the arguments given, with no machine's absolute path (such
    arguments are written relative to the checkout or the cache)."""
    from dpbench.data.registry import portable_path

    return "dpbench " + " ".join(shlex.quote(portable_path(a) if a.startswith("/") else a) for a in argv)


def _run_sweep(sweep, args: argparse.Namespace) -> int:
    """Check the whole grid, run what is missing, print the comparison table (shared by run and sweep)."""
    from dpbench.sweep import describe, import_ray, prepare_all, run_grid
    from dpbench.tables import format_table
    from dpbench.train import RESUME_FILE

    if args.address and args.backend != "ray":
        raise DpbenchError("--address is the Ray cluster's address; use it with --backend ray")
    if args.backend == "ray":
        import_ray()  # missing Ray: say so before loading anything
    _check_writable(sweep.out)
    cells = prepare_all(sweep.specs(_command_line(args.argv), progress=not args.quiet))
    for line in describe(cells):
        print(line)
    if getattr(args, "dry_run", False):
        for cell in cells:
            state = (
                "done" if cell.record_path.exists() else "resume" if (cell.workdir / RESUME_FILE).exists() else "new"
            )
            print(f"  {state:<7}{cell.cell_id}")
        return 0
    records = run_grid(cells, backend=args.backend, workers=args.workers, address=args.address, progress=not args.quiet)
    print()
    print(format_table(records, with_paper=True))
    return 0


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
        policies=_names(args.policy, "policy"),
        envs=_names(args.env, "env"),
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
    (with ``--set`` overrides), beside the paper preset's values and each field's documentation; returns 0."""
    from dpbench.config import build_configs, describe
    from dpbench.policies import get_policy_class
    from dpbench.tasks import get_task

    cls = get_policy_class(args.policy)
    task = get_task(args.env)
    image = bool(task.obs_mode(args.obs).spec.image_keys)
    overrides = _parse_overrides(args.set)
    pcfg, tcfg = build_configs(cls, args.preset, overrides, image_obs=image, task=task.name)
    paper = build_configs(cls, "paper", image_obs=image, task=task.name) if "paper" in cls.presets else (None, None)
    print(
        f"{cls.name} ({cls.__module__}:{cls.__qualname__}), preset {args.preset}, env {task.name}/"
        f"{args.obs or task.default_obs}" + (f", overrides {overrides}" if overrides else "")
    )
    for title, cfg, ref, scope in (("policy", pcfg, paper[0], "policy"), ("train", tcfg, paper[1], "train")):
        rows = [(f"{scope}.{name}", *rest) for name, *rest in describe(cfg, ref)]
        header = ("field", "type", args.preset, "paper" if ref is not None else "", "meaning")
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
        print(f"\n{title} config ({type(cfg).__name__}):")
        for row in [header, *rows]:
            print("  " + "  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths)) + "  " + row[4])
    print("\nSet any field with --set policy.FIELD=VALUE / --set train.FIELD=VALUE (dpbench run, dpbench sweep).")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    """``dpbench eval CHECKPOINT``: evaluate a saved policy under the paper's protocol and print the score and success
    rate with 95% intervals and the timing; returns 0. Raises DpbenchError for a checkpoint whose shapes do not fit
    the env's obs mode or that was trained on another env."""
    import torch

    from dpbench.checkpoint import load_policy, read_checkpoint_meta
    from dpbench.evaluate import evaluate
    from dpbench.tasks import get_task

    torch.set_num_threads(default_threads())
    meta = read_checkpoint_meta(args.checkpoint)
    task = get_task(args.env)
    obs = args.obs or meta.get("obs") or task.default_obs
    mode = task.obs_mode(obs, meta.get("action_mode"))
    policy, meta = load_policy(args.checkpoint, expect_spec=mode.spec, overrides=_parse_overrides(args.set))
    if meta.get("env") not in (None, task.name):
        raise DpbenchError(f"{args.checkpoint}: checkpoint was trained on env '{meta['env']}', not '{task.name}'")
    res = evaluate(
        policy,
        task,
        mode,
        n_episodes=args.episodes,
        seed_start=args.seed_start,
        sampling_seed=args.seed,
        video_path=Path(args.video) if args.video else None,
    )
    print(f"score (mean max reward) {res.score:.3f}  95% CI [{res.score_ci95[0]:.3f}, {res.score_ci95[1]:.3f}]")
    print(f"success rate {res.success_rate:.3f}  95% CI [{res.success_ci95[0]:.3f}, {res.success_ci95[1]:.3f}]")
    print(
        f"{res.n_episodes} episodes in {res.wall_s:.1f} s; "
        f"chunk latency {res.chunk_latency_ms:.1f} ms (batch {res.n_episodes})"
    )
    return 0


def _load_all(out: str) -> list[dict]:
    """Every record under OUT/records; corrupt or partial files are named on stderr and skipped."""
    from dpbench.records import load_records

    records, problems = load_records(Path(out))
    for p in problems:
        print(f"[dpbench] warning: {p}", file=sys.stderr)
    if not records:
        raise DpbenchError(f"no result records under {out}/records; run `dpbench run` first")
    return records


def _select(records: list[dict], args: argparse.Namespace) -> list[dict]:
    """The records matching --env / --policy (comma lists)."""
    if args.env:
        records = [r for r in records if r["env"] in _names(args.env, "env")]
    if args.policy:
        records = [r for r in records if r["policy"] in _names(args.policy, "policy")]
    if not records:
        raise DpbenchError(f"no result records under {args.out}/records match --env/--policy")
    return records


def cmd_table(args: argparse.Namespace) -> int:
    """``dpbench table``: print the table of the records under ``--out`` (filtered by ``--env``/``--policy``) and
    regenerate OUT/README.md (by default only for the default results dir); returns 0. Raises DpbenchError when no
    records match or the README cannot be written."""
    from dpbench.report import write_results_readme
    from dpbench.tables import format_table

    records = _load_all(args.out)
    print(format_table(_select(records, args), args.format, with_paper=args.with_paper))
    write = args.write_readme
    if write is None:  # default: regenerate the project's results/README.md, leave other dirs alone
        write = Path(args.out).resolve() == Path(DEFAULT_OUT).resolve()
    if write:
        try:
            from dpbench.report import knees_section
            from dpbench.reruns import rerun_section

            extra = "\n\n".join(x for x in (rerun_section(Path(args.out), records), knees_section(Path(args.out))) if x)
            readme = write_results_readme(Path(args.out), records, extra)
            print(f"[dpbench] wrote {readme}", file=sys.stderr)
        except OSError as exc:
            raise DpbenchError(f"cannot write {args.out}/README.md ({exc.strerror}); pass --no-write-readme") from None
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    """``dpbench plot``: write the figures (PNG + SVG) of the matching records to ``--figdir`` (default OUT/figures)
    and print their paths; returns 0. Raises DpbenchError when no records match or the directory is not writable."""
    from dpbench.plots import plot_all

    records = _select(_load_all(args.out), args)
    figdir = Path(args.figdir) if args.figdir else Path(args.out) / "figures"
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


def _grid_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--backend",
        default="local",
        choices=["local", "ray"],
        help="local: a process pool on this machine (default); ray: one Ray task per cell",
    )
    p.add_argument(
        "--workers",
        type=_positive,
        default=None,
        help="cells at once (local default: one per core, cores split between them)",
    )
    p.add_argument(
        "--address", default=None, help="Ray cluster address (default: the running one, or start a local one)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    _threads_option(p)


def _threads_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--threads",
        type=_positive,
        default=None,
        help="torch threads per process (default: the usable cores, from CPU affinity and the cgroup "
        "quota; a sweep splits them across its workers; same as DPBENCH_THREADS)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``dpbench`` argument parser: one subcommand per ``cmd_*`` function, set as ``func``."""
    parser = argparse.ArgumentParser(
        prog="dpbench", description="Diffusion Policy and baselines on Push-T and robomimic."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="registered envs, policies and datasets")
    p.set_defaults(func=cmd_list)

    data = sub.add_parser("data", help="inspect or generate datasets").add_subparsers(
        dest="data_command", required=True
    )
    p = data.add_parser("info", help="episodes, steps, keys, shapes and content hash of a zarr/hdf5 dataset")
    p.add_argument("path", help="a Push-T zarr or a robomimic-layout hdf5")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=cmd_data_info)
    for parent, name in ((sub, "collect"), (data, "generate")):  # `data generate` is the older name
        p = parent.add_parser(name, help="scripted demonstrations into robomimic-layout hdf5 (default: the cache dir)")
        p.add_argument("--env", default="pusht", help="pusht | lift | can | square")
        p.add_argument("--episodes", type=_positive, default=200, help="successful episodes to keep")
        p.add_argument(
            "--variant",
            default="ph",
            choices=["ph", "mh"],
            help="robomimic tasks: ph (consistent) or mh (randomized strategies and speeds)",
        )
        p.add_argument(
            "--camera", default=None, help="robomimic tasks: record 84x84 images, e.g. agentview,robot0_eye_in_hand"
        )
        p.add_argument("--start-seed", type=int, default=0, help="first env seed tried; failed episodes are skipped")
        p.add_argument("--workers", type=_positive, default=None, help="collector processes (default: one per core)")
        p.add_argument("--out", default=None, help="hdf5 path (default: the cache dir, where runs find it)")
        p.add_argument("--quiet", action="store_true", help="no progress bar")
        p.set_defaults(func=cmd_collect)

    p = sub.add_parser("run", help="train + evaluate policies x envs x N seeds, write records, print the table")
    p.add_argument("--policy", default="diffusion", help="a policy, or a comma list: diffusion,lstm_gmm,ibc")
    p.add_argument("--env", default="pusht", help="an env, or a comma list")
    p.add_argument("--seeds", type=_positive, default=1, help="number of training seeds (positive)")
    p.add_argument("--seed-start", type=int, default=0, help="first training seed (seeds SEED_START .. +SEEDS-1)")
    p.add_argument("--preset", default="quick", help="smoke | quick (default, CPU-sized) | paper (GPU)")
    p.add_argument("--obs", default=None, help="observation mode (Push-T: keypoints | state | image)")
    p.add_argument("--dataset", default=None, help="human | scripted | PATH (default: human if present)")
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override, e.g. policy.down_dims=64,128,256 or train.steps=2000",
    )
    p.add_argument(
        "--out", default=DEFAULT_OUT, help="results dir: records/, work/ (checkpoints), README.md (default results)"
    )
    p.add_argument("--device", default="cpu", help="cpu (default) | cuda | cuda:N | auto")
    p.add_argument("--video", action="store_true", help="write rollouts.gif of the final evaluation")
    p.add_argument(
        "--all-episodes",
        action="store_true",
        help="train on every non-validation episode instead of the paper's subset (human Push-T: 90 "
        "episodes, split with seed 42); same as --set train.train_episodes=all, and tables label it",
    )
    _grid_options(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("sweep", help="run the grid described by a YAML file (schema: dpbench/sweep/spec.py)")
    p.add_argument(
        "config", help="sweep YAML: policies, envs, obs, seeds, preset, dataset, out, set, per_policy, per_cell"
    )
    p.add_argument("--out", default=None, help="results dir (overrides the file's `out`)")
    p.add_argument(
        "--dry-run", action="store_true", help="check the grid and list its cells (done / resume / new); run nothing"
    )
    _grid_options(p)
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser(
        "config", help="a policy's config and training settings for a preset: values, paper values, meaning"
    )
    p.add_argument("policy", help="a registered policy name, or package.module:ClassName")
    p.add_argument("--preset", default="quick", help="smoke | quick (default) | paper")
    p.add_argument(
        "--env", default="pusht", help="the task (its recipe overrides and image encoder apply; default pusht)"
    )
    p.add_argument(
        "--obs", default=None, help="observation mode (default: the task's); image modes add the vision fields"
    )
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="show the config with these overrides applied")
    p.set_defaults(func=cmd_config)

    p = sub.add_parser("eval", help="evaluate a saved policy checkpoint")
    p.add_argument("checkpoint", help="a policy.safetensors written by dpbench run (results/work/<cell>/)")
    p.add_argument(
        "--env",
        default="pusht",
        help="the env to evaluate in; must match the checkpoint's observation and action sizes",
    )
    p.add_argument("--obs", default=None, help="observation mode (default: the checkpoint's)")
    p.add_argument("--episodes", type=_positive, default=50, help="test episodes (default 50, the paper's)")
    p.add_argument(
        "--seed-start",
        type=int,
        default=None,
        help="first test seed (default: the task's, 100000; 200000 gives the held-out seeds)",
    )
    p.add_argument("--seed", type=int, default=0, help="sampling-noise seed")
    p.add_argument("--video", default=None, help="write a GIF of the first episodes here")
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="inference override, e.g. policy.sampler=ddpm policy.num_inference_steps=100",
    )
    _threads_option(p)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("table", help="policies x tasks table from the result records (and results/README.md)")
    p.add_argument("--out", default=DEFAULT_OUT, help="results dir to read (default results)")
    p.add_argument("--env", default=None, help="only these envs (comma list)")
    p.add_argument("--policy", default=None, help="only these policies (comma list)")
    p.add_argument(
        "--format",
        default="md",
        choices=["md", "csv", "latex", "html"],
        help="md, latex, html: pivot table; csv: one tidy row per configuration",
    )
    p.add_argument("--with-paper", action="store_true", help="add the paper's rows (Chi et al. 2023, Tables I/II)")
    p.add_argument(
        "--write-readme",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="regenerate OUT/README.md from all records (default: only for the default results dir)",
    )
    p.set_defaults(func=cmd_table)

    p = sub.add_parser("plot", help="figures from the result records: scores, learning curves, latency (PNG + SVG)")
    p.add_argument("--out", default=DEFAULT_OUT, help="results dir to read (default results)")
    p.add_argument("--figdir", default=None, help="where to write the figures (default OUT/figures)")
    p.add_argument("--env", default=None, help="only these envs (comma list)")
    p.add_argument("--policy", default=None, help="only these policies (comma list)")
    p.set_defaults(func=cmd_plot)
    return parser


def _terminated(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # `kill` (SIGTERM) stops a run as cleanly as Ctrl-C


def main(argv: list[str] | None = None) -> int:
    """The ``dpbench`` entry point: parse ``argv`` (default ``sys.argv[1:]``) and run the subcommand. Returns its exit
    status: 0 on success, 2 after printing a DpbenchError in one line, 130 on Ctrl-C or SIGTERM (finished seeds are
    saved; rerunning resumes the rest)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if getattr(args, "threads", None):
        os.environ[THREADS_ENV] = str(args.threads)  # read by plan_workers here and inherited by workers
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminated) if in_main_thread else None
    try:
        return args.func(args)
    except DpbenchError as exc:
        print(f"dpbench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "\ndpbench: interrupted. Finished seeds are saved and unfinished ones resume from their last "
            "checkpoint: rerun the same command.",
            file=sys.stderr,
        )
        return 130
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
