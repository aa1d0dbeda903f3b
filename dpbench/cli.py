"""The ``dpbench`` command line: list | data | run | eval | table.

User-facing problems raise ``DpbenchError`` and are printed here in one line with exit status 2.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from dpbench.errors import DpbenchError


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
    import gymnasium as gym

    from dpbench.data.registry import list_datasets
    from dpbench.policy import available_policies
    from dpbench.tasks import TASKS

    print("envs:")
    for name, task in TASKS.items():
        registered = "registered" if task.gym_id in gym.registry else "NOT registered"
        print(f"  {name:<12} {task.gym_id} ({registered}); obs modes: {', '.join(task.obs_modes)} (default {task.default_obs})")
    print("policies:")
    for name, ref in sorted(available_policies().items()):
        print(f"  {name:<24} {ref}")
    print("datasets:")
    for name, env, where in list_datasets():
        print(f"  {name:<12} env {env}: {where}")
    return 0


def cmd_data_info(args: argparse.Namespace) -> int:
    from dpbench.data.episodes import load_episodes

    store = load_episodes(args.path)
    info = store.summary()
    if args.json:
        print(json.dumps(info, indent=1))
        return 0
    print(f"dataset:   {args.path}")
    print(f"episodes:  {info['episodes']}")
    print(f"steps:     {info['steps']}  (episode length min/mean/max {info['episode_length']['min']}/"
          f"{info['episode_length']['mean']:.1f}/{info['episode_length']['max']})")
    print("keys:")
    for k, v in info["keys"].items():
        print(f"  {k:<12} {tuple(v['shape'])} {v['dtype']}")
    print(f"hash:      {info['content_hash']}  (sha256 over non-image arrays)")
    return 0


def cmd_data_generate(args: argparse.Namespace) -> int:
    from dpbench.data.registry import generate_scripted_pusht, scripted_pusht_path

    if args.env != "pusht":
        raise DpbenchError(f"no scripted demonstrator for env '{args.env}' yet; valid: pusht")
    path = Path(args.out) if args.out else scripted_pusht_path(args.episodes)
    generate_scripted_pusht(args.episodes, path, start_seed=args.start_seed, progress=not args.quiet)
    print(f"wrote {path}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from dpbench.results import comparison_rows, format_table
    from dpbench.runner import CellSpec, prepare, run_cell

    out = Path(args.out)
    _check_writable(out)
    overrides = _parse_overrides(args.set)
    command = "dpbench " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    seeds = list(range(args.seed_start, args.seed_start + args.seeds))
    cells, data = [], None
    for seed in seeds:  # resolve everything first: bad names fail before any training
        cell = prepare(CellSpec(args.policy, args.env, seed, args.preset, args.obs, args.dataset, overrides, out,
                                args.video, not args.quiet, command), data)
        data = cell.data
        cells.append(cell)
    print(f"[dpbench] {args.policy} on {args.env} ({cells[0].obs}), preset {args.preset}, dataset "
          f"{data.kind} {data.path} (hash {data.store.content_hash()}), seeds {seeds}")
    records = []
    for cell in cells:
        done = cell.record_path.exists()
        rec = run_cell(cell)
        status = "already done" if done else f"{rec['wall']['total_s'] / 60:.1f} min"
        print(f"[dpbench] seed {cell.spec.seed}: max {rec['final']['max']:.3f}, avg-last-10 "
              f"{rec['final']['avg_last10']:.3f} ({status}) -> {cell.record_path}")
        records.append(rec)
    print()
    print(format_table(comparison_rows(records, with_paper=True)))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from dpbench.evaluate import evaluate
    from dpbench.policy import load_policy, read_checkpoint_meta
    from dpbench.tasks import get_task

    meta = read_checkpoint_meta(args.checkpoint)
    task = get_task(args.env)
    obs = args.obs or meta.get("obs") or task.default_obs
    mode = task.obs_mode(obs)
    policy, meta = load_policy(args.checkpoint, expect_spec=mode.spec)
    if meta.get("env") not in (None, task.name):
        raise DpbenchError(f"{args.checkpoint}: checkpoint was trained on env '{meta['env']}', not '{task.name}'")
    res = evaluate(policy, task, mode, n_episodes=args.episodes, seed_start=args.seed_start, sampling_seed=args.seed,
                   video_path=Path(args.video) if args.video else None)
    print(f"score (mean max reward) {res.score:.3f}  95% CI [{res.score_ci95[0]:.3f}, {res.score_ci95[1]:.3f}]")
    print(f"success rate {res.success_rate:.3f}  95% CI [{res.success_ci95[0]:.3f}, {res.success_ci95[1]:.3f}]")
    print(f"{res.n_episodes} episodes in {res.wall_s:.1f} s; chunk latency {res.chunk_latency_ms:.1f} ms (batch {res.n_episodes})")
    return 0


def cmd_table(args: argparse.Namespace) -> int:
    from dpbench.results import comparison_rows, format_table, load_records

    records, problems = load_records(Path(args.out))
    for p in problems:
        print(f"[dpbench] warning: {p}", file=sys.stderr)
    if args.env:
        records = [r for r in records if r["env"] in args.env.split(",")]
    if args.policy:
        records = [r for r in records if r["policy"] in args.policy.split(",")]
    if not records:
        raise DpbenchError(f"no result records under {args.out}/records; run `dpbench run` first")
    print(format_table(comparison_rows(records, with_paper=args.with_paper), args.format))
    return 0


def _check_writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".dpbench-write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise DpbenchError(f"results directory {out} is not writable ({exc.strerror}); pass --out DIR") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dpbench", description="Diffusion Policy and baselines on Push-T and robomimic.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="registered envs, policies and datasets")
    p.set_defaults(func=cmd_list)

    data = sub.add_parser("data", help="inspect or generate datasets").add_subparsers(dest="data_command", required=True)
    p = data.add_parser("info", help="episodes, steps, keys, shapes and content hash of a zarr/hdf5 dataset")
    p.add_argument("path")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_data_info)
    p = data.add_parser("generate", help="scripted demonstrations (cached hdf5)")
    p.add_argument("--env", default="pusht")
    p.add_argument("--episodes", type=_positive, default=200)
    p.add_argument("--start-seed", type=int, default=0)
    p.add_argument("--out", default=None, help="hdf5 path (default: the cache dir)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_data_generate)

    p = sub.add_parser("run", help="train + evaluate a policy for N seeds, write records, print the table")
    p.add_argument("--policy", default="diffusion")
    p.add_argument("--env", default="pusht")
    p.add_argument("--seeds", type=_positive, default=1, help="number of training seeds (positive)")
    p.add_argument("--seed-start", type=int, default=0)
    p.add_argument("--preset", default="quick", help="smoke | quick (default, CPU-sized) | paper (GPU)")
    p.add_argument("--obs", default=None, help="observation mode (Push-T: keypoints | state | image)")
    p.add_argument("--dataset", default=None, help="human | scripted | PATH (default: human if present)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override, e.g. policy.down_dims=64,128,256 or train.steps=2000")
    p.add_argument("--out", default="results")
    p.add_argument("--video", action="store_true", help="write rollouts.gif of the final evaluation")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("eval", help="evaluate a saved policy checkpoint")
    p.add_argument("checkpoint")
    p.add_argument("--env", default="pusht")
    p.add_argument("--obs", default=None)
    p.add_argument("--episodes", type=_positive, default=50)
    p.add_argument("--seed-start", type=int, default=None)
    p.add_argument("--seed", type=int, default=0, help="sampling-noise seed")
    p.add_argument("--video", default=None, help="write a GIF of the first episodes here")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("table", help="comparison table from the result records")
    p.add_argument("--out", default="results")
    p.add_argument("--env", default=None)
    p.add_argument("--policy", default=None)
    p.add_argument("--format", default="md", choices=["md", "csv"])
    p.add_argument("--with-paper", action="store_true")
    p.set_defaults(func=cmd_table)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except DpbenchError as exc:
        print(f"dpbench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ndpbench: interrupted. Finished seeds are saved and unfinished ones resume from their last "
              "checkpoint: rerun the same command.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
