"""The house (../shared/design.md): modules in folders by layer, arrows only up; and a run directory written
before the move still loads for test, eval, render and resume."""

import ast
import shutil
from pathlib import Path

import pytest

from amp_jax.cli import main
from amp_jax.training import checkpoint

from conftest import REPO_ROOT

PACKAGE = REPO_ROOT / "amp_jax"
# Bottom up: a module may import from its own layer and the layers before it, never after.
LAYERS = [
    {"errors", "quat"},
    {"catalog"},
    {"config", "config_text"},
    {"characters"},
    {"motion"},
    {"render"},
    {"envs"},
    {"motion_tools"},
    {"learning"},
    {"eval"},
    {"training"},
    {"cli", "paths", "__init__"},
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def _unit(module: str) -> str:
    """amp_jax.learning.ppo -> learning; amp_jax.config -> config."""
    return module.split(".")[1] if "." in module else "__init__"


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every amp_jax module that a file imports (`from amp_jax import x` imports amp_jax.x)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("amp_jax.")]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "amp_jax":
            if node.module == "amp_jax":
                found += [(node.lineno, f"amp_jax.{a.name}") for a in node.names if a.name != "__version__"]
            else:
                found.append((node.lineno, node.module))
    return found


def _modules():
    return [p for p in sorted(PACKAGE.rglob("*.py")) if "_data" not in p.parts]


def test_every_module_sits_in_a_known_layer():
    units = {_unit(".".join(p.relative_to(REPO_ROOT).with_suffix("").parts)) for p in _modules()}
    assert units <= set(RANK), f"not in a layer: {sorted(units - set(RANK))}"


def test_no_module_imports_from_a_layer_above_its_own():
    wrong = []
    for path in _modules():
        own = _unit(".".join(path.relative_to(REPO_ROOT).with_suffix("").parts))
        for line, module in _imports(path):
            if RANK[_unit(module)] > RANK[own]:
                wrong.append(f"{path.relative_to(REPO_ROOT)}:{line} ({own}) imports {module}")
    assert not wrong, "\n".join(wrong)


def test_training_never_imports_the_offline_clip_tools():
    """motion_tools/ (importers, retargeting, quality, mirror, transfer) is for the CLI's offline commands."""
    training_side = [p for p in _modules() if p.relative_to(PACKAGE).parts[0] in
                     {"characters", "motion", "render", "envs", "learning", "eval", "training"}]
    wrong = [f"{p.relative_to(REPO_ROOT)}:{line} imports {m}" for p in training_side for line, m in _imports(p)
             if _unit(m) == "motion_tools"]
    assert not wrong, "\n".join(wrong)


@pytest.fixture(scope="module")
def old_run(tmp_path_factory):
    """tests/data/run_before_the_move: a 2-iteration run of amp_humanoid_smoke (4 envs, hidden [32, 16]) saved
    by amp-jax before its modules moved into layer folders (commit 1e76207)."""
    run = tmp_path_factory.mktemp("old") / "run"
    shutil.copytree(REPO_ROOT / "tests" / "data" / "run_before_the_move", run)
    return run


def test_a_run_directory_from_before_the_move_loads_everywhere(old_run, tmp_path, capsys):
    assert main(["test", "--model_file", str(old_run), "--test_episodes", "2", "--num_envs", "2"]) == 0
    assert main(["eval", "--model_file", str(old_run), "--test_episodes", "2", "--num_envs", "2",
                 "--out", str(tmp_path / "report.json")]) == 0
    assert '"iteration": 2' in (tmp_path / "report.json").read_text()
    assert main(["render", "--model_file", str(old_run), "--out", str(tmp_path / "r.gif"), "--seconds", "0.2",
                 "--width", "64", "--height", "48"]) == 0
    assert main(["train", "--out_dir", str(old_run), "--resume", "--max_iterations", "1"]) == 0
    assert "resumed from" in capsys.readouterr().out and (old_run / "checkpoints" / "3").is_dir()
    # it was trained before ball joints had per-axis limits, and goes on without them
    assert checkpoint.load_run_config(old_run).env.physics.ball_axis_limits is False
