"""A character file written in degrees (`<compiler angle="degree">`, as MimicKit's are) loads exactly like
the same file in radians: joint ranges and action bounds come from MuJoCo's compiled model."""

import math
import xml.etree.ElementTree as ET
from pathlib import Path

import jax
import numpy as np
import pytest

from amp_jax.characters.character import load_character
from amp_jax.config import EnvConfig
from amp_jax.envs.amp_env import AmpEnv
from amp_jax.motion.clip import load_clip
from amp_jax.motion.library import build_motion_library

REPO_ROOT = Path(__file__).resolve().parent.parent
RADIAN_FILE = REPO_ROOT / "assets/humanoid/humanoid.xml"
KEY = ["head", "right_hand", "left_hand", "right_foot", "left_foot"]
CONTACT = ["right_foot", "left_foot"]


def _deg(text: str, which=slice(None)) -> str:
    values = [float(v) for v in text.split()]
    values[which] = [math.degrees(v) for v in values[which]]
    return " ".join(repr(v) for v in values)


def degree_copy(src: Path, dst: Path) -> Path:
    """src with every angle written in degrees: joint range/ref/springref (hinge and ball joints,
    defaults included), euler, the angle of axisangle, and angle="degree" on the compiler."""
    tree = ET.parse(src)
    root = tree.getroot()
    compiler = root.find("compiler")
    if compiler is None:
        compiler = ET.SubElement(root, "compiler")
    assert compiler.get("angle") == "radian"
    compiler.set("angle", "degree")
    assert compiler.get("eulerseq") is None
    for el in root.iter():
        if el.tag == "joint" and el.get("type", "hinge") in ("hinge", "ball"):
            for attr in ("range", "ref", "springref"):
                if el.get(attr) is not None:
                    el.set(attr, _deg(el.get(attr)))
        if el.get("euler") is not None:
            el.set("euler", _deg(el.get("euler")))
        if el.get("axisangle") is not None:
            el.set("axisangle", _deg(el.get("axisangle"), slice(3, 4)))
    tree.write(dst)
    return dst


@pytest.fixture(scope="module")
def characters(tmp_path_factory):
    deg_file = degree_copy(RADIAN_FILE, tmp_path_factory.mktemp("deg") / "humanoid.xml")
    assert 'angle="degree"' in deg_file.read_text()
    return load_character(RADIAN_FILE, KEY, CONTACT), load_character(deg_file, KEY, CONTACT)


def test_layouts_and_bounds_are_the_same(characters):
    rad, deg = (c.layout for c in characters)
    assert rad.dof_names == deg.dof_names
    for field in ("dof_low", "dof_high", "action_low", "action_high", "body_pos", "body_quat", "kp", "kd",
                  "torque_limit"):
        np.testing.assert_allclose(getattr(deg, field), getattr(rad, field), atol=1e-6, err_msg=field)
    # The right shoulder's x range as authored: [-110, 140] degrees; MimicKit's hinge-in-a-ball
    # bound 1.2 * 140 degrees = 2.932 rad (not 168, as the authored numbers read in degrees gave).
    i = deg.dof_names.index("right_shoulder_x")
    assert (deg.dof_low[i], deg.dof_high[i]) == pytest.approx((-1.9199, 2.4435), abs=1e-6)
    assert deg.action_high[i] == pytest.approx(1.2 * 2.7925, abs=1e-5)  # the shoulder's widest axis: z
    np.testing.assert_allclose(characters[1].mj_model.jnt_range, characters[0].mj_model.jnt_range, atol=1e-6)


def test_episodes_are_the_same(characters):
    """Reset and a few steps with the same (non-zero) actions give the same observations."""
    obs = []
    for character in characters:
        layout = character.layout
        clip = load_clip(REPO_ROOT / "motions/humanoid/humanoid_walk.npz", layout.num_dof)
        env = AmpEnv(character, build_motion_library(layout, [clip]), EnvConfig())
        actions = np.random.default_rng(0).uniform(-1, 1, (3, env.action_size)).astype(np.float32)
        step = jax.jit(env.step)
        state = jax.jit(env.reset)(jax.random.key(0))
        seen = [state.obs]
        for a in actions:
            state, out = step(state, a)
            seen.append(out.next_obs)
        obs.append(np.stack(seen))
    assert np.abs(obs[0][1:] - obs[0][:1]).max() > 1e-2  # the actions moved the character
    np.testing.assert_allclose(obs[1], obs[0], atol=1e-5)
