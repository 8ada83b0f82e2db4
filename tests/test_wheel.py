"""A wheel built from the repository carries what `cases`, `train CASE`, `view-motion` and `inspect` need.

The wheel is installed into a folder of its own (pip --target, no dependencies: they are this environment's)
and run from a working directory outside the checkout, with that folder first on the path, so that nothing
of the checkout can be found: its configs, characters and clips must come from the wheel (amp_jax/_data).
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(site folder, working directory) of the wheel installed outside the checkout."""
    tmp = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp / "dist"), str(REPO_ROOT)],
                   check=True, capture_output=True)
    wheel = next((tmp / "dist").glob("amp_jax-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(tmp / "site"),
                    str(wheel)], check=True, capture_output=True)
    (tmp / "work").mkdir()
    return tmp / "site", tmp / "work"


def test_the_wheel_holds_every_module_and_data_file(installed):
    """pyproject.toml lists the packages by hand (the data folders are mapped into amp_jax._data): a new
    sub-package or data folder must be listed there too."""
    site, _ = installed
    for folder, pattern in (("amp_jax", "**/*.py"), ("configs", "**/*.yaml"), ("assets", "**/*.xml"),
                            ("motions", "**/*.npz"), ("motions", "**/*.yaml")):
        for f in (REPO_ROOT / folder).glob(pattern):
            rel = f.relative_to(REPO_ROOT)
            inside = rel if folder == "amp_jax" else Path("amp_jax", "_data", rel)
            assert (site / inside).is_file(), f"{rel} is not in the wheel"
    # and no config the checkout lacks (a stale build/ folder would ship one, shadowing a preset)
    shipped = {p.relative_to(site / "amp_jax" / "_data") for p in (site / "amp_jax/_data/configs").rglob("*.yaml")}
    assert shipped == {p.relative_to(REPO_ROOT) for p in (REPO_ROOT / "configs").rglob("*.yaml")}


def _amp_jax(installed, *args, timeout=600):
    site, work = installed
    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run([sys.executable, "-m", "amp_jax.cli", *args], cwd=work, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_the_installed_wheel_is_the_one_that_runs(installed):
    site, work = installed
    out = subprocess.run([sys.executable, "-c", "import amp_jax.catalog as c; print(c.__file__); print(c.DATA_ROOT)"],
                         cwd=work, env={**os.environ, "PYTHONPATH": str(site)}, capture_output=True, text=True,
                         check=True).stdout.split()
    assert Path(out[0]).is_relative_to(site) and Path(out[1]) == site / "amp_jax" / "_data"


def test_the_wheel_lists_the_nine_cases(installed):
    proc = _amp_jax(installed, "cases")
    assert proc.returncode == 0, proc.stderr
    cases = {line.split()[0] for line in proc.stdout.splitlines()}
    nine = {"amp_humanoid", "amp_g1", "amp_go2", "amp_pi_plus", "amp_smpl", "amp_location_humanoid",
            "amp_location_humanoid_sword_shield", "amp_steering_humanoid", "amp_steering_humanoid_sword_shield"}
    assert nine <= cases and {f"{c}_fast" for c in nine} <= cases  # the presets travel too


def test_the_wheel_plays_and_inspects_a_shipped_clip(installed):
    site, work = installed
    proc = _amp_jax(installed, "view-motion", "motions/go2/go2_pace.npz", "--out", "go2.gif", "--width", "96",
                    "--height", "64")
    assert proc.returncode == 0, proc.stderr
    assert (work / "go2.gif").read_bytes()[:6] == b"GIF89a"
    proc = _amp_jax(installed, "inspect", "motions/humanoid/humanoid_walk.npz")
    assert proc.returncode == 0 and "limits: ok" in proc.stdout, proc.stdout + proc.stderr
