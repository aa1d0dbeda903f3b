"""An out-of-tree policy package, registered by entry point, runs end to end; contract breaches
get clear errors that name the policy."""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import textwrap
from pathlib import Path

import pytest

from dpbench.cli import main
from dpbench.config import PolicyConfig
from dpbench.errors import DpbenchError
from dpbench.policies import available_policies, get_policy_class

DOC = Path(__file__).resolve().parents[1] / "docs" / "adding_a_policy.md"


def _template() -> str:
    return re.search(r"```python\n(.*?)```", DOC.read_text(), re.S).group(1)


@pytest.fixture
def plugin_site(tmp_path, monkeypatch) -> Path:
    """A site dir holding my_policy.py plus the dist-info that pip would write for its entry point."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "my_policy.py").write_text(_template())
    info = site / "my_policy-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: my-policy\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[dpbench.policies]\nlinear = my_policy:LinearPolicy\n")
    monkeypatch.syspath_prepend(str(site))
    return site


def test_template_is_under_50_lines():
    assert len(_template().strip().splitlines()) < 50


def test_entry_point_policy_runs_and_appears_in_table(plugin_site, tmp_path, tiny_pusht_hdf5, capsys, smoke_argv):
    assert available_policies()["linear"] == "my_policy:LinearPolicy"
    out = tmp_path / "results"
    argv = smoke_argv("linear", tiny_pusht_hdf5, out)
    assert main(argv) == 0
    capsys.readouterr()
    assert main(["table", "--out", str(out)]) == 0
    assert "| dpbench | linear | smoke | path | 1 |" in capsys.readouterr().out


def test_module_colon_class_reference(plugin_site, tmp_path, tiny_pusht_hdf5, smoke_argv, capsys, monkeypatch):
    argv = smoke_argv("my_policy:LinearPolicy", tiny_pusht_hdf5, tmp_path)
    assert main(argv) == 0
    capsys.readouterr()
    # the table takes the same reference (its records name the policy by it)
    table = ["table", "--out", str(tmp_path), "--policy", "my_policy:LinearPolicy", "--no-write-readme"]
    assert main(table) == 0
    assert "| dpbench | my_policy:LinearPolicy | smoke |" in capsys.readouterr().out
    # and reads the records without the policy's code: a colleague's machine, where my_policy does not import
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(plugin_site)])
    monkeypatch.delitem(sys.modules, "my_policy", raising=False)
    assert main(table) == 0
    assert "| dpbench | my_policy:LinearPolicy | smoke |" in capsys.readouterr().out


def _expected_digest(path: Path) -> str:
    # a second implementation of a one-file policy's digest: its text (universal newlines), SHA-256
    return hashlib.sha256(path.read_text().encode()).hexdigest()[:12]


def test_an_edited_policy_file_makes_new_cells(plugin_site, tmp_path, tiny_pusht_hdf5, smoke_argv, monkeypatch, capsys):
    # A record names the code of a policy outside dpbench by its digest; after an edit the same command trains a
    # new cell instead of reusing the old code's record, which stays.
    from dpbench.checkpoint import load_policy, read_checkpoint_meta

    source = plugin_site / "my_policy.py"
    monkeypatch.delitem(sys.modules, "my_policy", raising=False)  # this test's copy, not an earlier test's
    argv = smoke_argv("my_policy:LinearPolicy", tiny_pusht_hdf5, tmp_path)
    assert main(argv) == 0
    (first,) = [json.loads(p.read_text()) for p in (tmp_path / "records").glob("*.json")]
    old = f"my_policy.py@sha256:{_expected_digest(source)}"
    assert first["versions"]["policy_source"] == old
    assert read_checkpoint_meta(tmp_path / first["checkpoint"])["policy_source"] == old
    capsys.readouterr()
    load_policy(tmp_path / first["checkpoint"])  # unchanged code: no note
    assert "policy's code" not in capsys.readouterr().err

    source.write_text(source.read_text() + "# tuned\n")
    monkeypatch.delitem(sys.modules, "my_policy")  # a new process would import the edited file
    assert main(argv) == 0
    # and says so: a comment's edit between a preemption and the resubmit restarts a cell from step 0
    err = capsys.readouterr().err
    assert "starts from step 0" in err and f"records/{first['cell_id']}.json" in err
    records = [json.loads(p.read_text()) for p in sorted((tmp_path / "records").glob("*.json"))]
    assert len(records) == 2 and len({r["config_hash"] for r in records}) == 2
    new = f"my_policy.py@sha256:{_expected_digest(source)}"
    assert {r["versions"]["policy_source"] for r in records} == {old, new}
    capsys.readouterr()
    load_policy(tmp_path / first["checkpoint"])  # the old checkpoint still loads, with a word on the change
    assert f"trained by {old}, but the policy's code is now {new}" in capsys.readouterr().err


def test_a_package_policy_is_named_by_all_its_files(tmp_path, monkeypatch, fresh_modules):
    # the class lives in mypkg/policy.py, a helper in mypkg/util/model.py: every .py file of the package counts,
    # loaded or not (a sweep worker may not have imported what the driver had), CRLF as LF
    from dpbench.policies import policy_source

    files = {
        "__init__.py": b"",
        "policy.py": _template().encode(),
        "util/__init__.py": b"",
        "util/model.py": b"# -*- coding: latin-1 -*-\r\nNAME = 'caf\xe9'\r\n",  # CRLF, and not UTF-8
    }
    for rel, data in {**files, ".ipynb_checkpoints/policy-checkpoint.py": b"x = 1\n"}.items():
        (tmp_path / "mypkg" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "mypkg" / rel).write_bytes(data)
    monkeypatch.syspath_prepend(str(tmp_path))
    cls = get_policy_class("mypkg.policy:LinearPolicy")
    assert "mypkg.util.model" not in sys.modules
    # by hand: sorted paths, LF line ends, the undecodable byte kept as it was; the hidden folder left out
    data = b"".join(rel.encode() + b"\0" + files[rel].replace(b"\r", b"") + b"\0" for rel in sorted(files))
    assert policy_source(cls) == f"mypkg (4 files)@sha256:{hashlib.sha256(data).hexdigest()[:12]}"


def test_a_policy_in_a_namespace_package_is_named_by_its_own_file(tmp_path, monkeypatch, fresh_modules):
    # another folder of the same namespace on sys.path is someone else's code: it does not count
    from dpbench.policies import policy_source

    for base in ("mine", "theirs"):
        (tmp_path / base / "nsp").mkdir(parents=True)
    (tmp_path / "mine" / "nsp" / "pol.py").write_text(_template())
    (tmp_path / "theirs" / "nsp" / "other.py").write_text("x = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path / "theirs"))
    monkeypatch.syspath_prepend(str(tmp_path / "mine"))
    cls = get_policy_class("nsp.pol:LinearPolicy")
    assert policy_source(cls) == f"pol.py@sha256:{_expected_digest(tmp_path / 'mine' / 'nsp' / 'pol.py')}"


def test_a_sweep_worker_with_other_policy_code_refuses_the_cell(plugin_site, tiny_pusht_hdf5, tmp_path):
    # the driver's code and this worker's differ (an edit during a sweep, another copy on a node): the worker
    # says so instead of training other code under the driver's cell id
    from dpbench.runner import CellSpec
    from dpbench.sweep.backends import _worker_run

    spec = CellSpec("my_policy:LinearPolicy", "pusht", 0, preset="smoke", dataset=str(tiny_pusht_hdf5), out=tmp_path)
    status, message = _worker_run(spec, "any", "path", str(tiny_pusht_hdf5), "my_policy.py@sha256:000000000000")
    assert status == "error" and "the driver's my_policy.py@sha256:000000000000" in message
    assert "the policy's code changed since the sweep started, or this machine has another copy" in message
    # same code, another cell id: not the policy's doing
    same = f"my_policy.py@sha256:{_expected_digest(plugin_site / 'my_policy.py')}"
    status, message = _worker_run(spec, "any", "path", str(tiny_pusht_hdf5), same)
    assert status == "error" and message.endswith("is the same dpbench installed everywhere?")


def test_builtin_policies_keep_their_identity():
    # dpbench's own policies are named by dpbench's commit: nothing joins their config hashes, so the committed
    # records' hashes (written by older code) are still what the same command resolves to
    from dpbench.policies import _BUILTIN, policy_source
    from dpbench.runner import CellSpec, resolve_config

    assert all(policy_source(get_policy_class(name)) is None for name in _BUILTIN)
    records = Path(__file__).resolve().parents[1] / "results" / "records"
    for name in (
        "pusht-keypoints__diffusion__human-1ba4b852__quick-8d8eadb76b__seed0.json",
        "square-low_dim__lstm_gmm__scripted-mh-delta-946c65d0__quick-43c1e4bf41__seed1.json",
    ):
        r = json.loads((records / name).read_text())
        spec = CellSpec(
            r["policy"], r["env"], r["seed"], preset=r["preset"], obs=r["obs"], overrides=r["config"]["overrides"]
        )
        variant = "mh" if "-mh" in r["dataset"]["kind"] else "ph"
        assert resolve_config(spec, variant=variant).chash == r["config_hash"]


@pytest.fixture
def fresh_modules(monkeypatch):
    """sys.path without the working directory (as a console script starts), and sys.modules restored after."""
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", os.getcwd())])
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        del sys.modules[name]


def test_a_module_in_the_working_directory_needs_no_path_setup(tmp_path, monkeypatch, fresh_modules):
    # The page's first command, run where my_policy.py sits: a console script's sys.path lacks the working
    # directory, so dpbench adds it for module:Class references (after the installed packages).
    (tmp_path / "my_policy.py").write_text(_template())
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(tmp_path)])
    assert get_policy_class("my_policy:LinearPolicy").name == "linear"
    with pytest.raises(DpbenchError, match="names an installed module or one in the working directory"):
        get_policy_class("no_such_module:Policy")


def test_a_class_name_typo_is_told_the_modules_policy_classes(tmp_path, monkeypatch, fresh_modules):
    # (A name no other test imports: an earlier test's my_policy stays in sys.modules.)
    # The module imports; the class after ':' is misspelled (or missing). The message names the module's file,
    # the Policy classes it holds, and the one the typo means, not "names an installed module" (it does).
    (tmp_path / "typo_policy.py").write_text(_template())
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DpbenchError) as err:
        get_policy_class("typo_policy:LinearPolcy")
    assert str(err.value) == (
        f"cannot import policy 'typo_policy:LinearPolcy': module 'typo_policy' ({tmp_path / 'typo_policy.py'}) has "
        "no 'LinearPolcy'; it holds the Policy classes LinearPolicy; did you mean 'LinearPolicy'?"
    )
    with pytest.raises(DpbenchError, match=r"no class after the ':' \(module:ClassName\); .* LinearPolicy$"):
        get_policy_class("typo_policy:")


def test_an_installed_module_wins_and_a_shadowed_file_is_named(plugin_site, tmp_path, monkeypatch, fresh_modules):
    # my_policy is installed (plugin_site) and a different my_policy.py sits in the working directory: the
    # installed one is used, as the page says; a file named like a standard module gets told to rename.
    work = tmp_path / "work"
    work.mkdir()
    (work / "my_policy.py").write_text("raise RuntimeError('the working directory copy was imported')\n")
    (work / "code.py").write_text(_template())
    monkeypatch.chdir(work)
    assert get_policy_class("my_policy:LinearPolicy").name == "linear"
    with pytest.raises(DpbenchError, match=r"holds under the same name as your code\.py; rename your file"):
        get_policy_class("code:LinearPolicy")


def test_the_template_policy_takes_images_with_no_code_of_its_own(plugin_site, tmp_path, tiny_pusht_hdf5, smoke_argv):
    argv = smoke_argv("linear", tiny_pusht_hdf5, tmp_path, "--obs", "image")
    assert main(argv) == 0
    (record,) = [json.loads(p.read_text()) for p in (tmp_path / "records").glob("*.json")]
    assert record["obs"] == "image" and "vision" in record["config"]["policy"]


BROKEN = textwrap.dedent(
    """
    import torch
    from dpbench.config import PolicyConfig
    from dpbench.policy import Policy

    class NoPredict(Policy):
        name = "no_predict"
        presets = {"smoke": ({}, {})}
        def compute_loss(self, batch):
            return torch.zeros(())

    class WrongShape(Policy):
        name = "wrong_shape"
        Config = PolicyConfig  # no fields of its own
        presets = {"smoke": ({}, dict(steps=2, batch_size=4, eval_every=1, checkpoint_every=1, eval_episodes=2))}
        def __init__(self, spec, config):
            super().__init__(spec, config)
            self.w = torch.nn.Parameter(torch.zeros(1))
        def compute_loss(self, batch):
            return (self.w ** 2).sum()
        def predict_action(self, obs):
            return torch.zeros(len(obs["obs"]), 3)

    class RaisesWhenPlanning(WrongShape):
        name = "raises_planning"
        def predict_action(self, obs):
            return obs["obs"] @ torch.zeros(3, 3)  # a shape bug inside the policy's own code

    class RaisesWhenTraining(WrongShape):
        name = "raises_training"
        def predict_action(self, obs):
            return torch.zeros(len(obs["obs"]), self.n_action_steps, self.spec.action_dim)
        def compute_loss(self, batch):
            raise KeyError("no_such_key")

    class QueuesItself(RaisesWhenTraining):
        name = "queues_itself"
        def select_action(self, obs):  # a whole chunk per call: what lerobot-style code returns
            return self.predict_action(obs)

    class LossShapeBug(RaisesWhenTraining):
        name = "loss_shape_bug"
        def compute_loss(self, batch):
            return torch.nn.functional.mse_loss(self.w * torch.ones(2, 4), torch.zeros(2, 12))

    class NoSuperInit(WrongShape):
        name = "no_super_init"
        def __init__(self, spec, config):
            self.w = torch.nn.Parameter(torch.zeros(1))
    """
)


def test_contract_breaches_name_the_policy(tmp_path, monkeypatch, tiny_pusht_hdf5, capsys, smoke_argv):
    (tmp_path / "broken_policies.py").write_text(BROKEN)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(
        DpbenchError,
        match=r"'no_predict' breaks the Policy contract: it does not implement predict_chunk \(or predict_action\)",
    ):
        get_policy_class("broken_policies:NoPredict")
    argv = smoke_argv("broken_policies:WrongShape", tiny_pusht_hdf5, tmp_path / "r")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "policy 'wrong_shape' (broken_policies:WrongShape) broke the contract" in err and "(B, T_a, D_a)" in err


def test_an_exception_in_the_policys_own_code_is_one_line_naming_where(
    tmp_path, monkeypatch, tiny_pusht_hdf5, capsys, smoke_argv
):
    (tmp_path / "broken_policies.py").write_text(BROKEN)
    monkeypatch.syspath_prepend(str(tmp_path))
    # in the first planning call, before training: one line with the file and line of the policy's code
    assert main(smoke_argv("broken_policies:RaisesWhenPlanning", tiny_pusht_hdf5, tmp_path / "r")) == 2
    err = capsys.readouterr().err
    assert "policy 'raises_planning' (broken_policies:RaisesWhenPlanning) raised RuntimeError" in err
    assert "broken_policies.py:" in err and "in predict_action" in err and "Traceback" not in err
    # in training: that cell fails with one line, and a built-in policy's cell of the same grid still runs
    argv = smoke_argv("broken_policies:RaisesWhenTraining,bc", tiny_pusht_hdf5, tmp_path / "t")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "raised KeyError at broken_policies.py:" in err and "in compute_loss" in err and "Traceback" not in err
    assert [p.name.split("__")[1] for p in (tmp_path / "t" / "records").glob("*.json")] == ["bc"]


def test_import_problems_in_a_policy_file_say_which(tmp_path, monkeypatch, fresh_modules):
    monkeypatch.chdir(tmp_path)
    # the module's own errors, at their lines, not "has no class" or "names an installed module": an
    # AttributeError in its top-level code, an import of a name its module lacks, a lazy loader's __getattr__
    cases = {
        "broken:P": (
            "import os\nos.no_such_function()\n",
            r"importing 'broken' raised AttributeError: .* at broken\.py:2",
        ),
        "badimp:P": (
            "from os import no_such_name\n",
            r"'badimp' failed at badimp\.py:1 in <module>: cannot import name",
        ),
        "lazy:Foo": (
            "_m = {}\n\n\ndef __getattr__(name):\n    return _m[name]\n",
            r"'lazy' raised KeyError: 'Foo' at lazy\.py:5",
        ),
    }
    for ref, (source, message) in cases.items():
        (tmp_path / f"{ref.partition(':')[0]}.py").write_text(source)
        with pytest.raises(DpbenchError, match=message):
            get_policy_class(ref)
    (tmp_path / "needs_dep.py").write_text("import no_such_dependency_x\n")
    with pytest.raises(
        DpbenchError, match=r"importing 'needs_dep' failed at needs_dep\.py:1 in <module>: No module named"
    ):
        get_policy_class("needs_dep:P")
    (tmp_path / "typo.py").write_text("def f(:\n    pass\n")
    with pytest.raises(DpbenchError, match=r"cannot import policy 'typo:P': .* at typo\.py:1"):
        get_policy_class("typo:P")
    (tmp_path / "boom.py").write_text("x = 1\nraise ValueError('bad constant')\n")
    with pytest.raises(DpbenchError, match=r"raised ValueError: bad constant at boom\.py:2"):
        get_policy_class("boom:P")
    with pytest.raises(DpbenchError, match=r"did you mean 'boom:P'\?"):
        get_policy_class("boom.P")
    with pytest.raises(DpbenchError, match=r"your own class: name it as module:Class"):
        get_policy_class("mine")


def test_plugin_mistakes_a_newcomer_makes_get_one_line_each(tmp_path, monkeypatch, tiny_pusht_hdf5, capsys, smoke_argv):
    (tmp_path / "broken_policies.py").write_text(BROKEN)
    monkeypatch.syspath_prepend(str(tmp_path))
    # select_action overridden to return (B, T_a, D_a): refused by the first planning call, before training
    assert main(smoke_argv("broken_policies:QueuesItself", tiny_pusht_hdf5, tmp_path / "a")) == 2
    err = capsys.readouterr().err
    assert "select_action returned shape (1, 8, 2), expected (B, D_a) = (1, 2)" in err and err.count("\n") == 1
    assert not (tmp_path / "a" / "records").exists()
    # a shape bug that torch reports from its own code: the policy's line first, torch's after
    assert main(smoke_argv("broken_policies:LossShapeBug", tiny_pusht_hdf5, tmp_path / "b")) == 2
    err = capsys.readouterr().err
    assert "raised RuntimeError at broken_policies.py:" in err and "in compute_loss (raised in functional.py:" in err
    assert err.count("\n") == 1  # one cell: its error once, not also a FAILED line above it
    # __init__ without super().__init__: torch refuses the parameter; the message says what is missing
    assert main(smoke_argv("broken_policies:NoSuperInit", tiny_pusht_hdf5, tmp_path / "c")) == 2
    assert "does its __init__ call super().__init__(spec, config) first?" in capsys.readouterr().err


CONFIGS = textwrap.dedent(
    """
    import dataclasses
    from broken_policies import RaisesWhenTraining
    from dpbench.config import PolicyConfig
    from dpbench.policy import Policy

    class Undecorated(PolicyConfig):
        horizon: int = 12

    @dataclasses.dataclass
    class Untyped(PolicyConfig):
        hidden = 256
        horizon: int = 12

    class NoDecorator(RaisesWhenTraining):
        Config = Undecorated

    class NoType(RaisesWhenTraining):
        Config = Untyped

    @dataclasses.dataclass(kw_only=True)
    class Required(PolicyConfig):
        dropout: float  # Python accepts a field without a default here; dpbench cannot build it

    class NoDefault(RaisesWhenTraining):
        Config = Required

    @dataclasses.dataclass
    class Forgotten(PolicyConfig):
        horizon: int = 12

    class NoConfig(Policy):  # defines Forgotten but never names it: the base's horizon, 16, would train
        name = "no_config"
        presets = {"smoke": ({}, {})}
        def compute_loss(self, batch):
            raise NotImplementedError
        def predict_action(self, obs):
            raise NotImplementedError
    """
)

ORDER = textwrap.dedent(
    """
    import dataclasses
    from dpbench.config import PolicyConfig

    @dataclasses.dataclass
    class Required(PolicyConfig):
        dropout: float  # after the base's defaulted fields: Python refuses the class at import
    """
)


def test_a_config_that_would_silently_lose_fields_is_refused(tmp_path, monkeypatch):
    (tmp_path / "broken_policies.py").write_text(BROKEN)
    (tmp_path / "broken_configs.py").write_text(CONFIGS)
    monkeypatch.syspath_prepend(str(tmp_path))
    # without @dataclass the class's horizon would be the base's 16, and without a type `hidden` no field at all
    with pytest.raises(DpbenchError, match=r"Config class Undecorated is not a dataclass; put @dataclasses.dataclass"):
        get_policy_class("broken_configs:NoDecorator")
    with pytest.raises(DpbenchError, match=r"Untyped.hidden has no type annotation.*`hidden: int = 256`"):
        get_policy_class("broken_configs:NoType")
    # a field without a default: one message that says to give it one, not a TypeError traceback from Config()
    with pytest.raises(DpbenchError, match=r"Required.dropout has no default; give every config field one"):
        get_policy_class("broken_configs:NoDefault")
    with pytest.raises(DpbenchError, match=r"'broken_configs:NoConfig' names no config class: write `Config = YourC"):
        get_policy_class("broken_configs:NoConfig")
    assert get_policy_class("broken_policies:WrongShape").Config is PolicyConfig  # named explicitly: accepted
    (tmp_path / "config_order.py").write_text(ORDER)
    with pytest.raises(DpbenchError, match=r"non-default argument 'dropout'.*give every config field a default"):
        get_policy_class("config_order:Anything")
    # a file's path where a module's name goes
    with pytest.raises(DpbenchError, match=r"not a file's path \('sub/my_policy.py'\): run from sub .* my_policy:P"):
        get_policy_class("sub/my_policy.py:P")


def test_a_policy_is_named_by_its_own_class_not_by_a_registered_name_it_shares(plugin_site, tmp_path, capsys):
    # A subclass that keeps BC's `name` is still itself when its checkpoint loads (before, `eval` loaded the
    # built-in BC under that name); an entry point must carry its class's name (records and checkpoints use the
    # class's), and one named like a built-in is ignored out loud.
    from dpbench.checkpoint import load_policy, save_policy
    from dpbench.config import build_configs
    from dpbench.spec import PolicySpec

    (plugin_site / "my_bc.py").write_text(
        "from dpbench.baselines.bc import BCPolicy\n\nclass MyBC(BCPolicy):\n    pass\n"
    )
    cls = get_policy_class("my_bc:MyBC")
    assert cls.name == "bc"
    spec = PolicySpec({"obs": (20,)}, 2)
    path = save_policy(cls(spec, build_configs(cls, "smoke")[0]), tmp_path / "p.safetensors", {"env": "pusht"})
    loaded, _ = load_policy(path, expect_spec=spec)
    assert type(loaded) is cls
    # A dpbench class that moved since the checkpoint was made is found by its registered name; a plugin class
    # that no longer imports is an error, not the built-in of the same name.
    bc = get_policy_class("bc")
    weights = bc(spec, build_configs(bc, "smoke")[0])
    moved = save_policy(weights, tmp_path / "m.safetensors", {"env": "pusht", "policy_class": "dpbench.old:BCPolicy"})
    assert type(load_policy(moved, expect_spec=spec)[0]) is bc
    gone = save_policy(weights, tmp_path / "g.safetensors", {"env": "pusht", "policy_class": "my_gone:MyBC"})
    with pytest.raises(DpbenchError, match="cannot import policy 'my_gone:MyBC'"):
        load_policy(gone, expect_spec=spec)

    eps = plugin_site / "my_policy-0.1.dist-info" / "entry_points.txt"
    eps.write_text(eps.read_text() + "other = my_policy:LinearPolicy\nbc = my_policy:LinearPolicy\n")
    with pytest.raises(
        DpbenchError, match="entry point 'other' loads my_policy:LinearPolicy, whose `name` is 'linear'"
    ):
        get_policy_class("other")
    assert available_policies()["bc"] == "dpbench.baselines.bc:BCPolicy"
    assert "entry point 'bc' (my_policy:LinearPolicy) is ignored" in capsys.readouterr().err
    # `dpbench list` says which installed policies do not load, rather than listing them as usable
    eps.write_text(eps.read_text() + "gone = my_gone:Missing\nquits = my_script:P\n")
    (plugin_site / "my_script.py").write_text("import sys\n\nsys.exit(3)\n")  # it ended `dpbench list` itself
    assert main(["list"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.startswith("  ")}
    assert "does not load: cannot import policy 'my_gone:Missing'" in lines["gone"]
    assert "importing 'my_script' called sys.exit(3) at my_script.py:3" in lines["quits"]
    assert "does not load" not in lines["linear"] and "does not load" not in lines["diffusion"]
    # ... and an unknown name's error does not offer them as valid (nor marks the ones that load)
    with pytest.raises(DpbenchError, match=r"valid policies: .*gone \(does not load\), ibc, linear, .*quits \(does"):
        get_policy_class("nope")


def test_the_documented_pyproject_installs_an_entry_point_dpbench_finds(tmp_path):
    # The other tests write the dist-info pip would; this one lets pip build the docs' own pyproject.toml, so a
    # wrong table name, build backend or module list in the docs fails here. No index: setuptools is dpbench's own
    # build requirement, already in the venv.
    import subprocess

    # the docs' build backend, which pip must find in this interpreter without build isolation (venvs of Python
    # 3.12+ do not ship it)
    pytest.importorskip("setuptools", reason="setuptools is not installed here: the docs' build backend")
    toml = re.search(r"```toml\n(.*?)```", DOC.read_text(), re.S).group(1)
    assert '[project.entry-points."dpbench.policies"]' in toml
    pkg, site = tmp_path / "pkg", tmp_path / "site"
    pkg.mkdir()
    (pkg / "pyproject.toml").write_text(toml)
    (pkg / "my_policy.py").write_text(_template())
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-index"]
    done = subprocess.run(
        [*pip, "--no-deps", "--no-build-isolation", "--target", str(site), str(pkg)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    env = {**os.environ, "PYTHONPATH": str(site)}

    def dpbench(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "dpbench.cli", *args], capture_output=True, text=True, env=env, cwd=tmp_path
        )
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    assert re.search(r"^\s*linear\s+my_policy:LinearPolicy$", dpbench("list"), re.M)
    assert "n_action_steps" in dpbench("config", "linear", "--preset", "smoke")  # the installed module imports


def test_a_library_read_through_another_venvs_site_packages_is_not_the_users_code(tmp_path, monkeypatch):
    # scripts/worktree_env.sh makes a venv that reads the main .venv's packages through a .pth file: torch then
    # sits outside this interpreter's own purelib, and a torch frame must still not be named as the user's line
    from dpbench import errors

    site = tmp_path / "other" / "lib" / "python3" / "site-packages"
    (site / "torchlike").mkdir(parents=True)
    lib_file = site / "torchlike" / "functional.py"
    lib_file.write_text("")
    users_file = tmp_path / "my_policy.py"
    users_file.write_text("")
    monkeypatch.syspath_prepend(str(site))
    errors._not_users_roots.cache_clear()
    try:
        assert errors._not_users(str(lib_file)) and not errors._not_users(str(users_file))
    finally:
        errors._not_users_roots.cache_clear()
