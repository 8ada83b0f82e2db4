"""Self-collision (env.physics.self_collision): limbs collide with each other and with the trunk, as in
MimicKit's simulators; bodies joined by a joint, and geoms that overlap at rest, do not."""

from pathlib import Path

import mujoco
import numpy as np
import pytest

from amp_jax.characters.character import limbs, load_character
from amp_jax.config import PhysicsConfig

REPO_ROOT = Path(__file__).resolve().parent.parent
HUMANOID = REPO_ROOT / "assets/humanoid/humanoid.xml"
LEGS = ("right_thigh", "right_shin", "right_foot", "left_thigh", "left_shin", "left_foot")


def _pairs(model):
    return {frozenset((model.geom(int(a)).name, model.geom(int(b)).name))
            for a, b in zip(model.pair_geom1, model.pair_geom2)}


def test_limbs_and_pairs_of_the_humanoid():
    character = load_character(HUMANOID, [], [], PhysicsConfig(self_collision=True))
    layout, model = character.layout, character.mj_model
    limb = dict(zip(layout.body_names, limbs(layout.parents)))
    assert [b for b, x in limb.items() if x < 0] == ["pelvis", "torso"]
    assert len({limb["right_upper_arm"], limb["right_lower_arm"], limb["right_hand"]}) == 1
    assert len({limb[b] for b in ("head", "right_hand", "left_hand", "right_foot", "left_foot")}) == 5
    pairs = _pairs(model)
    assert frozenset(("right_shin", "left_shin")) in pairs  # leg against leg
    assert frozenset(("right_hand", "pelvis")) in pairs  # arm against the trunk
    assert frozenset(("right_hand", "right_upper_arm")) not in pairs  # the same limb
    assert frozenset(("right_upper_arm", "torso")) not in pairs  # parent and child
    # No pair touches at rest (qpos0), so none pushes on a standing character.
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    assert data.ncon == 0
    off = load_character(HUMANOID, [], [], PhysicsConfig(self_collision=False)).mj_model
    assert off.npair == 0


def _squeeze_legs(self_collision: bool) -> tuple[float, bool]:
    """Float the humanoid without gravity and push its legs together (100 N m adducting each hip) for
    0.5 s: the deepest overlap [m] of a right leg geom with a left one (negative: they overlap), and
    whether the right foot ended up left of the left foot (in the pelvis frame)."""
    model = load_character(HUMANOID, [], [], PhysicsConfig(self_collision=self_collision)).mj_model
    model.opt.gravity[:] = 0.0
    data = mujoco.MjData(model)
    data.qpos[2] = 2.0
    push = {"right_hip": 100.0, "left_hip": -100.0}  # about x: the right leg to +y, the left to -y
    for name, torque in push.items():
        data.qfrc_applied[model.jnt_dofadr[model.joint(name).id]] = torque  # the ball joint's x DoF
    right = [model.geom(g).id for g in LEGS[:3]]
    left = [model.geom(g).id for g in LEGS[3:]]
    fromto = np.zeros(6)
    deepest = np.inf
    for _ in range(int(0.5 / model.opt.timestep)):
        mujoco.mj_step(model, data)
        for a in right:
            for b in left:
                deepest = min(deepest, mujoco.mj_geomDistance(model, data, a, b, 1.0, fromto))
    pelvis = data.body("pelvis")
    lateral = [(data.body(f).xpos - pelvis.xpos) @ pelvis.xmat.reshape(3, 3)[:, 1] for f in ("right_foot", "left_foot")]
    return deepest, bool(lateral[0] > lateral[1])


@pytest.mark.parametrize("self_collision", [True, False])
def test_legs_pushed_together_do_not_pass_through(self_collision):
    deepest, crossed = _squeeze_legs(self_collision)
    if self_collision:  # soft contact at 120 Hz with 2 solver iterations: the 5 cm capsules give 2 cm
        assert deepest > -0.025 and not crossed
    else:  # the legs pass through each other
        assert deepest < -0.05 and crossed
