"""amp_jax.eval.sim_to_sim: the reference MuJoCo model (MuJoCo's default solver, full contacts) and the eval in
MuJoCo itself, against the MJX eval on a policy that holds a standing pose."""

import jax.numpy as jnp
import mujoco
import numpy as np
import pytest

from amp_jax import quat
from amp_jax.catalog import CONFIG_DIR
from amp_jax.characters import kinematics
from amp_jax.characters.character import geom_extent, load_character
from amp_jax.config import load_config
from amp_jax.errors import InputError
from amp_jax.eval import report as eval_report
from amp_jax.eval import sim_to_sim
from amp_jax.learning.train_step import init_train_state
from amp_jax.motion.clip import Clip, save_clip
from amp_jax.training.build import build

from conftest import REPO_ROOT

# The humanoid standing with its arms down, feet flat on the floor (tests/test_pd.py holds it in MJX).
STAND_DOF = np.zeros(28, np.float32)
STAND_DOF[6] = 1.5708  # right_shoulder_x
STAND_DOF[10] = -1.5708  # left_shoulder_x
STAND_HEIGHT = 0.8824


def _contacts(model, qpos) -> set:
    """The (geom, geom) name pairs MuJoCo finds in contact at qpos."""
    data = mujoco.MjData(model)
    data.qpos[:] = qpos
    mujoco.mj_forward(model, data)
    name = lambda g: mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_GEOM, g)  # noqa: E731
    return {tuple(sorted((name(c.geom1), name(c.geom2)))) for c in data.contact}


def _geoms_below_floor(model, qpos) -> set:
    """Names of the geoms whose lowest point (amp_jax.characters.character.geom_extent) is below z = 0 at qpos."""
    data = mujoco.MjData(model)
    data.qpos[:] = qpos
    mujoco.mj_kinematics(model, data)
    below = set()
    for g in range(1, model.ngeom):  # 0 is the floor
        extent, radius = geom_extent(model, g)
        rot = data.geom_xmat[g].reshape(3, 3)
        if data.geom_xpos[g, 2] - np.abs(rot[2]) @ extent - radius < 0:
            below.add(mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_GEOM, g))
    return below


def _qpos(layout, height, dof):
    return np.asarray(kinematics.to_qpos(layout, jnp.array([0.0, 0.0, height]), quat.identity(),
                                         kinematics.dof_to_joint_rot(layout, jnp.asarray(dof))))


def test_reference_model_has_mujocos_default_solver_and_full_contacts(humanoid):
    mjx_model, ref = humanoid.mj_model, sim_to_sim.reference_model(humanoid)
    # MuJoCo's documented defaults against the tuned MJX budget.
    assert (mjx_model.opt.iterations, mjx_model.opt.ls_iterations) == (2, 4)
    assert (ref.opt.iterations, ref.opt.ls_iterations, ref.opt.tolerance) == (100, 50, 1e-8)
    assert ref.opt.solver == mujoco.mjtSolver.mjSOL_NEWTON and ref.opt.integrator == mujoco.mjtIntegrator.mjINT_EULER
    assert ref.opt.timestep == mjx_model.opt.timestep == 1 / 120
    settings = sim_to_sim.physics_settings(ref, "mujoco")
    assert settings["iterations"] == 100 and settings["euler_damping"] and settings["contacts"] == "all geoms"
    assert sim_to_sim.physics_settings(mjx_model, "mjx")["contacts"] == "explicit pairs only"
    # Every geom collides (the humanoid's file authors MuJoCo's default contype = conaffinity = 1).
    assert not mjx_model.geom_contype.any() and ref.geom_contype.all() and ref.geom_conaffinity.all()
    assert ref.npair == mjx_model.npair == 2  # the floor/foot pairs stay

    layout = humanoid.layout
    # Sunk 0.87 m: the pelvis sphere (radius 0.09, 0.07 above the root) reaches 8 mm into the floor. MuJoCo
    # finds every geom whose lowest point is below the floor; the MJX model only the feet.
    sunk = _qpos(layout, STAND_HEIGHT - 0.87, STAND_DOF)
    below = _geoms_below_floor(ref, sunk)
    assert {"pelvis", "right_thigh", "left_shin", "right_hand", "left_foot"} <= below and "head" not in below
    assert _contacts(ref, sunk) == {("floor", g) for g in below}
    assert _contacts(mjx_model, sunk) == {("floor", "left_foot"), ("floor", "right_foot")}
    crossed = STAND_DOF.copy()
    crossed[layout.dof_names.index("right_hip_x")] = 0.6  # the right leg swings through the left
    crossed_qpos = _qpos(layout, STAND_HEIGHT, crossed)
    assert _contacts(mjx_model, crossed_qpos) == set()
    assert _contacts(ref, crossed_qpos) == {("left_thigh", "right_thigh"), ("left_thigh", "right_shin")}
    # Standing, nothing touches: the MuJoCo eval starts from the same state as the MJX one.
    assert _contacts(ref, _qpos(layout, STAND_HEIGHT, STAND_DOF)) == set()


@pytest.fixture(scope="module")
def standing(tmp_path_factory):
    """The smoke case on a standing clip, 2 s episodes, with an actor that outputs the standing pose's
    PD targets whatever it observes."""
    clip_path = tmp_path_factory.mktemp("stand") / "stand.npz"
    n = 10
    save_clip(clip_path, Clip(fps=30.0, loop=False, root_pos=np.tile(np.float32([0, 0, STAND_HEIGHT]), (n, 1)),
                              root_rot=np.tile(np.float32([1, 0, 0, 0]), (n, 1)), dof_pos=np.tile(STAND_DOF, (n, 1)),
                              character="humanoid"))
    cfg = load_config(CONFIG_DIR / "amp_humanoid_smoke.yaml",
                      {"env.motion_file": str(clip_path), "env.episode_length": 2.0, "train.num_envs": 2,
                       "agent.hidden_sizes": [16], "agent.disc_buffer_size": 16, "agent.disc_replay_samples": 2})
    env, learner = build(cfg)
    state = init_train_state(learner, env, 0)
    action = (jnp.asarray(STAND_DOF) - env._action_mean) / env._action_scale
    np.testing.assert_allclose(env.pd_targets(action), STAND_DOF, atol=1e-5)
    head = state.actor_params["params"]["head"]
    params = {"params": {**state.actor_params["params"],
                         "head": {"kernel": jnp.zeros_like(head["kernel"]), "bias": action}}}
    return env, learner, state.replace(actor_params=params)


def test_standing_policy_gives_the_same_episodes_in_mujoco_and_mjx(standing):
    env, learner, state = standing
    reports = {engine: eval_report.eval_report(learner, env, state, num_episodes=2, num_envs=2, engine=engine)
               for engine in ("mjx", "mujoco")}
    for engine, report in reports.items():
        assert report["physics"]["engine"].startswith(engine)
        assert report["episodes"] == 2 and report["fall_rate"] == 0.0
        assert report["mean_episode_length"] == env.episode_steps == 60
        # Both hold the clip's one pose: the frames stay near it (0 is the pose itself, ~1.4 unrelated).
        mm = report["motion_matching"]
        assert mm["stay"] < mm["near"] and mm["cover"] == 1.0, (engine, mm)
    assert reports["mjx"]["physics"]["iterations"] == 2 and reports["mujoco"]["physics"]["iterations"] == 100
    # In MuJoCo the pelvis stays within 3 cm of its standing height and the arms hang down.
    r = sim_to_sim.run_mujoco_rollouts(learner, env, state, num_episodes=2, num_envs=2)
    assert r.qpos.shape == (61, 2, env.character.mj_model.nq)
    assert np.max(np.abs(r.qpos[:, :, 2] - STAND_HEIGHT)) < 0.03
    dof = np.asarray(kinematics.joint_rot_to_dof(env.layout, kinematics.qpos_to_joint_rot(env.layout, r.qpos[-1])))
    np.testing.assert_allclose(dof[:, [6, 10]], np.broadcast_to(STAND_DOF[[6, 10]], (2, 2)), atol=0.1)
    with pytest.raises(InputError, match="engine"):
        eval_report.eval_report(learner, env, state, num_episodes=2, num_envs=2, engine="bullet")


def test_reference_model_keeps_the_collisions_the_file_authored(tmp_path):
    """A geom the character file keeps out of collisions stays out; the others collide."""
    xml = (REPO_ROOT / "assets/humanoid/humanoid.xml").read_text()
    marked = '<geom name="head" type="sphere"'
    assert xml.count(marked) == 1
    path = tmp_path / "humanoid.xml"
    path.write_text(xml.replace(marked, '<geom name="head" contype="0" conaffinity="2" type="sphere"'))
    ref = sim_to_sim.reference_model(load_character(path, ["head"], ["right_foot", "left_foot"]))
    head = mujoco.mj_name2id(ref, mujoco.mjtObj.mjOBJ_GEOM, "head")
    assert (ref.geom_contype[head], ref.geom_conaffinity[head]) == (0, 2)
    others = np.arange(ref.ngeom) != head
    assert ref.geom_contype[others].all() and ref.geom_conaffinity[others].all()
    body = ref.geom_bodyid[head]  # the head body's only geom: the broad phase's body masks follow
    assert (ref.body_contype[body], ref.body_conaffinity[body]) == (0, 2)
