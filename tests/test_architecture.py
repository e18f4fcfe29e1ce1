"""The shape of the package (docs/architecture.md): one-way imports, short files and functions,
torch-free entry points, and extension points that take one file and one registry line."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fashiongan.config import RunConfig, from_dict, to_dict
from fashiongan.errors import FashionGANError
from fashiongan.losses import LOSSES
from fashiongan.metrics.suite import METRICS
from fashiongan.models import MODELS
from fashiongan.regularizers import REGULARIZERS
from fashiongan.training.loop import Trainer
from fashiongan.training.monitor import read_metrics
from fashiongan.validation import validate
from test_training import tiny

SRC = Path(__file__).parents[1] / "src" / "fashiongan"
MAX_FILE_LINES = 500
MAX_FUNCTION_LINES = 80
# the CLI's train commands, and their Python twin, `fashiongan.train`
MAY_IMPORT_TRAINING = {"fashiongan.cli.train", "fashiongan.api", "fashiongan.augment_gain"}


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """The fashiongan modules a file imports, at module level or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith("fashiongan"):
                found.add(node.module)
                found |= {f"{node.module}.{a.name}" for a in node.names}  # submodules by name
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("fashiongan")}
    return found


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in SRC.rglob("*.py")}
    return {m: {i for i in imports_of(p) if i in modules and i != m} for m, p in modules.items()}


def test_the_import_graph_has_no_cycles():
    g = graph()
    done, stack = set(), []

    def visit(m):
        if m in stack:
            cycle = stack[stack.index(m) :] + [m]
            pytest.fail("import cycle: " + " → ".join(cycle))
        if m in done:
            return
        stack.append(m)
        for n in sorted(g[m]):
            visit(n)
        stack.pop()
        done.add(m)

    for m in sorted(g):
        visit(m)
    assert len(done) == len(g) > 50


def test_no_submodule_imports_the_package_root():
    offenders = [m for m, deps in graph().items() if m != "fashiongan" and "fashiongan" in deps]
    assert offenders == []


def test_nothing_outside_training_imports_it_but_the_train_commands():
    offenders = {
        m: sorted(d for d in deps if d.startswith("fashiongan.training"))
        for m, deps in graph().items()
        if not m.startswith("fashiongan.training") and m not in MAY_IMPORT_TRAINING
    }
    assert {m: d for m, d in offenders.items() if d} == {}


def test_files_and_functions_are_short():
    long_files = {
        str(p.relative_to(SRC)): n
        for p in SRC.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > MAX_FILE_LINES
    }
    assert long_files == {}
    long_functions = {}
    for p in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long_functions[f"{p.relative_to(SRC)}:{node.name}"] = n
    assert long_functions == {}


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["presets"]])
def test_the_command_answers_without_loading_torch(argv):
    code = (
        "import sys\nfrom fashiongan.cli import main\n"
        f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]


def test_the_registries_are_the_cli_choices(capsys):
    from fashiongan.cli import main

    assert main(["train", "--help"]) == 0
    help_text = " ".join(capsys.readouterr().out.split())
    for name in [*LOSSES.names(), *MODELS.names()]:
        assert f"{name}," in help_text or f"{name} (default" in help_text
    assert main(["train", "--loss", "wgan-lp", "--dry-run"]) == 0
    assert main(["train", "--loss", "bogus", "--dry-run"]) == 2


# --- one file and one registry line each: the examples that came with the reshaping ----------


def test_a_regulariser_from_its_registry_trains_and_is_validated(idx_dir, tmp_path):
    cfg = tiny(idx_dir, steps=4)
    cfg.loss.r1, cfg.loss.r1_every, cfg.log.log_every = 0.0, 2, 1
    cfg.loss.reg = ("dragan=10",)
    Trainer(cfg, tmp_path / "r").run()
    rows = [r for r in read_metrics(tmp_path / "r" / "metrics.jsonl") if "penalty" in r]
    # lazy: on steps 1 and 3 (counted from 0: 0 and 2), nothing between
    assert [r["penalty"] > 0 for r in rows] == [True, False, True, False]
    for bad, message in [
        (("nope=1",), "unknown regularizer 'nope'"),
        (("dragan",), "expected NAME=STRENGTH"),
        (("dragan=-1",), "--reg dragan=-1.0: expected a finite, non-negative strength"),
        (("dragan=x",), "--reg"),
        (("r1=1",), "--reg r1: set it with --r1 instead"),
    ]:
        cfg.loss.reg = bad
        with pytest.raises(FashionGANError, match=message):
            validate(cfg)


def test_a_bad_reg_on_the_command_line_is_one_line(capsys):
    from fashiongan.cli import main

    assert main(["train", "--reg", "nope=1", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "unknown regularizer 'nope'" in err and err.count("\n") == 1


def test_settings_added_later_are_saved_only_when_set():
    """A run that does not use --reg writes the settings 0.1 wrote, so 0.1 can read it back."""
    cfg = RunConfig()
    assert "reg" not in to_dict(cfg)["loss"]
    cfg.loss.reg = ("dragan=10",)
    saved = to_dict(cfg)
    assert saved["loss"]["reg"] == ("dragan=10",)
    assert from_dict(saved).loss.reg == ("dragan=10",)
    from fashiongan.api import _settings

    assert _settings(RunConfig(), {"reg": "dragan=10"}).loss.reg == ("dragan=10",)
    assert _settings(RunConfig(), {"reg": ["dragan=1", "dragan=2"]}).loss.reg[1] == "dragan=2"
    with pytest.raises(FashionGANError, match="reg=5: expected a list of str"):
        _settings(RunConfig(), {"reg": 5})


def test_every_extension_point_is_registered():
    assert "wgan-lp" in LOSSES.names() and "dragan" in REGULARIZERS.names()
    assert "dcgan32" in MODELS.names() and "swd" in METRICS.names()


def test_the_32px_model_makes_32px_images():
    from fashiongan.models.build import discriminator_for, generator_for

    cfg = RunConfig()
    cfg.model.model, cfg.model.width = "dcgan32", 0.25
    G, D = generator_for(cfg.model, 10), discriminator_for(cfg, 10)
    x = G(torch.randn(3, cfg.model.z_dim), torch.arange(3))
    assert x.shape == (3, 1, 32, 32) and D(x, torch.arange(3)).shape == (3,)


def outside(meta: dict, is_int: bool):
    """A value just outside a field's stated bounds (None when it states none)."""
    step = 1 if is_int else 1e-6
    if "gt" in meta:
        return meta["gt"]
    if "min" in meta:
        return meta["min"] - step
    if "lt" in meta:
        return meta["lt"]
    if "max" in meta:
        return meta["max"] + step
    return None


def test_every_bound_a_field_states_is_enforced_with_its_flag():
    from fashiongan.config import flag, flat_fields, set_path

    checked = 0
    for path, f in flat_fields():
        default = RunConfig()
        value = outside(f.metadata, "int" in str(f.type))
        if value is None:
            continue
        if "tuple" in str(f.type):
            value = (value, value)
        set_path(default, path, value)
        with pytest.raises(FashionGANError, match=flag(path)):
            validate(default)
        checked += 1
    assert checked >= 30


def test_every_choice_a_field_states_is_enforced():
    from fashiongan.config import flat_fields, set_path

    for path, f in flat_fields():
        if "choices" in f.metadata or "registry" in f.metadata and "tuple" not in str(f.type):
            cfg = RunConfig()
            set_path(cfg, path, "no-such-choice")
            with pytest.raises(FashionGANError, match="no-such-choice"):
                validate(cfg)
