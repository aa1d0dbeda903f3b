"""The ``dpbench`` argument grammar: every subcommand, its options and their help text.

``build_parser`` sets each subcommand's ``cmd_*`` function as ``func``; ``dpbench.cli.main`` parses and calls it.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from dpbench.commands import DEFAULT_OUT, cmd_config, cmd_eval, cmd_plot, cmd_run, cmd_sweep, cmd_table
from dpbench.data_commands import cmd_collect, cmd_data_info, cmd_list

VARIANT_HELP = (
    "only these demo variants (comma list: ph, mh): robomimic's proficient-human and multi-human demos, or the "
    "scripted demos that stand in for them; Push-T's human demos count as ph"
)


def _int_at_least(low: int, what: str) -> Callable[[str], int]:
    """An argparse type: an integer >= ``low`` (``what`` names it in the error)."""

    def parse(value: str) -> int:
        try:
            n = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {value!r}") from None
        if n < low:
            raise argparse.ArgumentTypeError(f"must be {what}, got {n}")
        return n

    return parse


_positive = _int_at_least(1, "a positive integer")
_non_negative = _int_at_least(0, "an integer >= 0 (a seed)")


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
    p.add_argument(
        "--quiet",
        action="store_true",
        help="no progress bars, even on a terminal (a log gets no bars anyway: status lines every 5 min)",
    )
    _threads_option(p)


def _threads_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--threads",
        type=_positive,
        default=None,
        help="torch threads per process (default: the usable cores, from CPU affinity and the cgroup "
        "quota; a sweep splits them across its workers; same as DPBENCH_THREADS)",
    )


def _device_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="cpu", help="cpu (default) | cuda | cuda:N | auto (cuda when torch sees one)")


def build_parser() -> argparse.ArgumentParser:
    """The ``dpbench`` argument parser: one subcommand per ``cmd_*`` function, set as ``func``."""
    parser = argparse.ArgumentParser(
        prog="dpbench", description="Diffusion Policy and baselines on Push-T and robomimic."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = _command(sub, "list", help="registered envs, policies and datasets")
    p.set_defaults(func=cmd_list)

    data = _command(sub, "data", help="inspect or generate datasets").add_subparsers(dest="data_command", required=True)
    p = _command(data, "info", help="episodes, steps, keys, shapes and content hash of a zarr/hdf5 dataset")
    p.add_argument(
        "dataset",
        help="a Push-T zarr or robomimic-layout hdf5 PATH, or a dataset name `dpbench list` shows for --env "
        "(human, scripted, scripted-delta, ...; data info reads it only, and never collects a missing one)",
    )
    p.add_argument("--env", default="pusht", help="the task a dataset name belongs to (default pusht)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument(
        "--keys",
        default=None,
        help="load only these arrays (comma list; actions always): a record's dataset.keys give its hash",
    )
    p.set_defaults(func=cmd_data_info)
    for parent, name in ((sub, "collect"), (data, "generate")):  # `data generate` is the older name
        what = "scripted demonstrations into robomimic-layout hdf5 (default: the cache dir)"
        p = _command(parent, name, help=what if name == "collect" else "the older name of `dpbench collect`")
        p.add_argument("--env", default="pusht", help="pusht (default) | lift | can | square | transport | tool_hang")
        p.add_argument(
            "--episodes",
            type=_positive,
            default=None,
            help="successful episodes to keep (default: 200; robomimic mh 300, the size of robomimic's mh sets)",
        )
        p.add_argument(
            "--variant",
            default="ph",
            choices=["ph", "mh"],
            help="robomimic tasks: ph (consistent; default) or mh (randomized strategies and speeds; not tool_hang)",
        )
        p.add_argument(
            "--action-mode",
            default="abs",
            choices=["abs", "delta"],
            help="robomimic tasks: record absolute OSC_POSE targets (abs, default: the paper's position control for "
            "DP) or the delta actions that command them (delta, robomimic's velocity-style actions: the baselines' "
            "Table I cells, --dataset scripted-delta)",
        )
        p.add_argument(
            "--camera", default=None, help="robomimic tasks: record 84x84 images, e.g. agentview,robot0_eye_in_hand"
        )
        p.add_argument(
            "--start-seed",
            type=_non_negative,
            default=0,
            help="first env seed tried (default 0, the standard set); failed episodes are skipped; another needs --out",
        )
        p.add_argument(
            "--workers",
            type=_positive,
            default=None,
            help="robomimic tasks: collector processes (default: one per core); Push-T collects in one",
        )
        p.add_argument(
            "--out",
            default=None,
            help="hdf5 path (default: the cache dir; --dataset scripted* finds only the default episode count "
            "there, so train on another count with --dataset PATH); an existing file needs --overwrite",
        )
        p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
        p.add_argument(
            "--quiet",
            action="store_true",
            help="no progress bar, even on a terminal (a log gets status lines every 5 min instead)",
        )
        p.set_defaults(func=cmd_collect)

    p = _command(sub, "run", help="train + evaluate policies x envs x N seeds, write records, print the table")
    p.add_argument(
        "--policy",
        default="diffusion",
        help="a policy, or a comma list: diffusion,lstm_gmm,ibc (default diffusion); your own class: "
        "module:Class (docs/adding_a_policy.md)",
    )
    p.add_argument("--env", default="pusht", help="an env, or a comma list (default pusht)")
    p.add_argument("--seeds", type=_positive, default=1, help="number of training seeds (positive; default 1)")
    p.add_argument("--seed-start", type=int, default=0, help="first training seed (seeds SEED_START .. +SEEDS-1)")
    p.add_argument("--preset", default="quick", help="smoke | quick (default, CPU-sized) | paper (GPU)")
    p.add_argument(
        "--obs", default=None, help="observation mode (Push-T: keypoints | state | image; robomimic: low_dim | image)"
    )
    p.add_argument(
        "--dataset",
        default=None,
        help="human | scripted | PATH (Push-T; default: human if present); robomimic: scripted | scripted-mh | "
        "scripted-delta | scripted-mh-delta | PATH (-delta: the same demonstrators and seeds in delta actions; "
        "default: scripted, and scripted-delta for LSTM-GMM, IBC and BET, as the paper trains them)",
    )
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override one field; repeat for more: --set policy.down_dims=64,128,256 --set train.lr=3e-4 (a new "
        "train.steps keeps the evaluation schedule; one at or below train.eval_after is refused)",
    )
    p.add_argument(
        "--out",
        default=DEFAULT_OUT,
        help="results dir: records/ and work/ (checkpoints); a cell recorded there is not run again (default results)",
    )
    _device_option(p)
    p.add_argument("--video", action="store_true", help="write rollouts.gif of the final evaluation")
    p.add_argument(
        "--all-episodes",
        action="store_true",
        help="train on every non-validation episode instead of the paper's subset (human Push-T: 90 "
        "episodes, split with seed 42); same as --set train.train_episodes=all, and tables label it",
    )
    _grid_options(p)
    p.set_defaults(func=cmd_run)

    p = _command(sub, "sweep", help="run the grid described by a YAML file (schema: dpbench/sweep/spec.py)")
    p.add_argument(
        "config",
        help="sweep YAML: policies, envs, obs, seeds, seed_start, preset, dataset, out, device, video, set, "
        "per_policy, per_cell, grids (schema: dpbench/sweep/spec.py)",
    )
    p.add_argument("--out", default=None, help="results dir (overrides the file's `out`)")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="check the grid and list its cells with estimated CPU time (minutes, or hours past 2) from the "
        "records' measured rates, and the total; writes, collects and runs nothing. States: done; running "
        "(another process holds it); resume (priced from its checkpoint's step on); new; recorded (the out dir "
        "has its record, made from demos not collected here: found once they are); blocked (cannot run here). "
        "Done and recorded cells show the wall time their records measured",
    )
    p.add_argument(
        "--skip-blocked",
        action="store_true",
        help="run the cells that can run here and list the others (a demonstration variant a task lacks, such "
        "as tool_hang mh; a missing dataset file) instead of refusing the whole grid; unknown names are still errors",
    )
    for what, example in (("env", "square,transport"), ("policy", "diffusion,lstm_gmm"), ("variant", "ph")):
        p.add_argument(
            f"--{what}",
            dest=f"only_{what}",
            default=None,
            metavar=what.upper() + "S" if what != "policy" else "POLICIES",
            help=f"only the grid's cells of these {what} values (comma list, e.g. {example}); their cell ids and "
            "records are the whole grid's",
        )
    _grid_options(p)
    p.set_defaults(func=cmd_sweep)

    p = _command(
        sub, "config", help="a policy's config and training settings for a preset: values, paper values, meaning"
    )
    p.add_argument("policy", help="a registered policy name, or package.module:ClassName")
    p.add_argument("--preset", default="quick", help="smoke | quick (default) | paper")
    p.add_argument(
        "--env", default="pusht", help="the task (its recipe overrides and image encoder apply; default pusht)"
    )
    p.add_argument(
        "--obs", default=None, help="observation mode (default: the task's); image modes add the vision fields"
    )
    p.add_argument(
        "--variant",
        default="ph",
        choices=("ph", "mh"),
        help="the demonstrations' variant: mh sets hold 1.5x ph's demos, so mh cells train 1.5x the steps (default ph)",
    )
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="show the config with this override applied (repeat --set for more)",
    )
    p.set_defaults(func=cmd_config)

    p = _command(sub, "eval", help="evaluate a saved policy checkpoint")
    p.add_argument(
        "checkpoint",
        help="a policy.safetensors (final weights) or best.safetensors (the max-selected ones) written by dpbench run "
        "(results/work/<cell>/)",
    )
    p.add_argument(
        "--env",
        default=None,
        help="the env to evaluate in (default: the checkpoint's); must match its observation and action sizes",
    )
    p.add_argument("--obs", default=None, help="observation mode (default: the checkpoint's)")
    p.add_argument("--episodes", type=_positive, default=50, help="test episodes (default 50, the paper's)")
    p.add_argument(
        "--seed-start",
        type=_non_negative,
        default=None,
        help="first test seed (default: the task's, 100000; 200000 gives the held-out seeds)",
    )
    p.add_argument("--seed", type=int, default=0, help="sampling-noise seed (default 0)")
    p.add_argument("--video", default=None, help="write a GIF of the first episodes here")
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="one inference override; repeat for more: --set policy.sampler=ddpm --set policy.num_inference_steps=100",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar, even on a terminal (a log gets status lines)")
    _device_option(p)
    _threads_option(p)
    p.set_defaults(func=cmd_eval)

    p = _command(
        sub,
        "table",
        help="policies x tasks table from the result records, printed to stdout (redirect it to save it: "
        "> table.csv); for ./results it also rewrites results/README.md (--no-write-readme only prints)",
    )
    p.add_argument("--out", default=DEFAULT_OUT, help="results dir to read (default results)")
    p.add_argument("--env", default=None, help="only these envs (comma list)")
    p.add_argument("--policy", default=None, help="only these policies (comma list)")
    p.add_argument(
        "--obs",
        default=None,
        help="only these obs modes (comma list; e.g. --layout paper --obs keypoints,low_dim: the paper's Table I; "
        "image: Table II)",
    )
    p.add_argument(
        "--variant",
        default=None,
        metavar="VARIANTS",
        help=f"{VARIANT_HELP}. With --layout paper, only those columns of the paper's tables (--variant mh: Lift, "
        "Can, Square and Transport mh)",
    )
    p.add_argument(
        "--format",
        default="md",
        choices=["md", "csv", "latex", "html"],
        help="md, latex, html: a rendered table (latex: booktabs; needs graphicx too where a table is wider than a "
        "page (the paper layout, a pivot of 2+ tasks) and is scaled to the line width; the paper layout stacks each "
        "cell's lines); csv: tidy rows, floats to 4 decimals (pivot: one per configuration; --layout paper: one per "
        "cell; --claims: one per task column with a record, its ranking, and DP against the best baseline where it "
        "has both, then the means as rows with task 'mean' and mean_over set, without the cells: run once without "
        "--claims for those)",
    )
    p.add_argument(
        "--with-paper",
        action="store_true",
        help="add the paper's rows (Chi et al. 2023, Tables I/II) to the pivot layout (--layout paper and --claims "
        "always show the paper's numbers)",
    )
    p.add_argument(
        "--layout",
        default=None,
        choices=["pivot", "paper"],
        help="pivot: one row per configuration, every metric (default); paper: the paper's Tables I/II, policies "
        "as rows and its task/variant columns, each cell 'ours (paper)' (the default with --claims)",
    )
    p.add_argument(
        "--claims",
        action="store_true",
        help="also recompute the paper's claims from the records: per task, DP against the best baseline and "
        "the ranking, beside the paper's over all its policies and over the ones ours has (implies --layout paper)",
    )
    p.add_argument(
        "--write-readme",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="regenerate OUT/README.md from all records (default: only for the default results dir, ./results)",
    )
    p.set_defaults(func=cmd_table)

    p = _command(
        sub,
        "plot",
        help="figures from the result records: scores, learning curves, score at equal training time, latency "
        "(PNG + SVG)",
    )
    p.add_argument("--out", default=DEFAULT_OUT, help="results dir to read (default results)")
    p.add_argument(
        "--figdir",
        default=None,
        help="where to write the figures (default OUT/figures; with --env/--policy/--obs/--variant "
        "OUT/figures/selection_...)",
    )
    p.add_argument("--env", default=None, help="only these envs (comma list)")
    p.add_argument("--policy", default=None, help="only these policies (comma list)")
    p.add_argument("--obs", default=None, help="only these obs modes (comma list)")
    p.add_argument("--variant", default=None, metavar="VARIANTS", help=VARIANT_HELP)
    p.set_defaults(func=cmd_plot)
    return parser


def _command(group: Any, name: str, help: str) -> argparse.ArgumentParser:
    """A subcommand whose ``--help`` opens with the one-line summary its parent's list shows (argparse shows
    ``help`` only there). The parser is its own ``_parser`` default, so ``main`` can report a stray argument with
    the usage of the (innermost) subcommand it was given to, not the top level's."""
    parser = group.add_parser(name, help=help, description=help)
    parser.set_defaults(_parser=parser)
    return parser
