"""Sim-to-sim evaluation: a trained policy run in MuJoCo itself (the C engine, on the CPU), so that a policy
that only works with the tuned MJX model shows up.

The reference model is the character's MJX model with what was tuned for MJX undone: MuJoCo's own default
solver settings (iterations, line search, tolerances, cone, Jacobian, implicit joint damping) instead of the
small Newton budget, and full contacts, every geom colliding as the character file authored it (MuJoCo's
default: all of them), with the floor, instead of only the explicit floor/foot pairs. The explicit pairs
stay (they carry the configured floor friction); MuJoCo skips dynamic contacts between bodies they cover.

Each environment is an MjData stepped by mujoco.mj_step on the host, with the same PD servo torque per
substep. Observations, rewards, termination and the automatic reset are the environment's own jitted code
(AmpEnv.finish_step) fed with MuJoCo's qpos and qvel, from the same start states as the MJX eval, so the
result is an EvalRollouts that rollout_stats, motion matching and the report measure unchanged.
"""

from __future__ import annotations

import copy

import jax
import jax.numpy as jnp
import mujoco
import numpy as np

from amp_jax.characters.character import Character
from amp_jax.envs import pd
from amp_jax.envs.amp_env import NULL, AmpEnv
from amp_jax.eval import evaluate
from amp_jax.eval.rollout import Record
from amp_jax.learning.learner import Learner
from amp_jax.learning.train_step import TrainState

# The solver options the loader tunes for MJX (amp_jax.characters.character); the reference model takes MuJoCo's defaults.
SOLVER_OPTIONS = ("integrator", "solver", "iterations", "ls_iterations", "tolerance", "ls_tolerance",
                  "noslip_iterations", "cone", "jacobian")
# MuJoCo's warnings for a simulation it found unstable and reset to qpos0 (a physics fault here).
_INSTABILITY = (mujoco.mjtWarning.mjWARN_BADQPOS, mujoco.mjtWarning.mjWARN_BADQVEL, mujoco.mjtWarning.mjWARN_BADQACC)


def _authored_collisions(xml_path) -> list[list[tuple[int, int]]]:
    """(contype, conaffinity) of every geom of every character body, as the character file authored them;
    bodies in depth-first order (MuJoCo's body id - 1, the layout's order)."""
    out = []

    def visit(body):
        out.append([(int(g.contype), int(g.conaffinity)) for g in body.geoms])
        for child in body.bodies:
            visit(child)

    for root in mujoco.MjSpec.from_file(str(xml_path)).worldbody.bodies:
        visit(root)
    return out


def reference_model(character: Character) -> mujoco.MjModel:
    """The character's model with MuJoCo's default solver settings and full contacts (module docstring);
    the timestep, and so the substeps of a control step, stay."""
    model = copy.deepcopy(character.mj_model)
    default = mujoco.MjOption()
    for name in SOLVER_OPTIONS:
        setattr(model.opt, name, getattr(default, name))
    model.opt.disableflags &= ~int(mujoco.mjtDisableBit.mjDSBL_EULERDAMP)
    authored = _authored_collisions(character.xml_path)
    seen: dict[int, int] = {}
    for g in range(model.ngeom):
        body = int(model.geom_bodyid[g])
        if body == 0:  # the world's geoms: the loader's floor collides like a default geom
            if mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_GEOM, g) == "floor":
                model.geom_contype[g] = model.geom_conaffinity[g] = 1
            continue
        i = seen[body] = seen.get(body, -1) + 1
        model.geom_contype[g], model.geom_conaffinity[g] = authored[body - 1][i]
    for b in range(model.nbody):  # what the compiler derives from the geoms: the broad phase reads it
        geoms = model.geom_bodyid == b
        model.body_contype[b] = np.bitwise_or.reduce(model.geom_contype[geoms], initial=0)
        model.body_conaffinity[b] = np.bitwise_or.reduce(model.geom_conaffinity[geoms], initial=0)
    return model


def physics_settings(model: mujoco.MjModel, engine: str) -> dict:
    """The engine, solver settings and contacts a rollout used (for the eval report)."""
    opt = model.opt
    return {
        "engine": engine,
        "timestep": float(opt.timestep),
        "integrator": mujoco.mjtIntegrator(opt.integrator).name.removeprefix("mjINT_").lower(),
        "solver": mujoco.mjtSolver(opt.solver).name.removeprefix("mjSOL_").lower(),
        "iterations": int(opt.iterations),
        "ls_iterations": int(opt.ls_iterations),
        "tolerance": float(opt.tolerance),
        "cone": mujoco.mjtCone(opt.cone).name.removeprefix("mjCONE_").lower(),
        "jacobian": mujoco.mjtJacobian(opt.jacobian).name.removeprefix("mjJAC_").lower(),
        "euler_damping": not opt.disableflags & mujoco.mjtDisableBit.mjDSBL_EULERDAMP,
        "contacts": "all geoms" if np.any(model.geom_contype) else "explicit pairs only",
        "contact_pairs": int(model.npair),
    }


class MujocoRollout:
    """Deterministic rollouts of num_envs environments in MuJoCo (the reference model), num_steps long."""

    def __init__(self, learner: Learner, env: AmpEnv, num_envs: int, num_steps: int):
        self.env, self.num_envs, self.num_steps = env, num_envs, num_steps
        self.model = reference_model(env.character)

        def targets(state: TrainState, obs):
            return env.pd_targets(learner.policy_mean(state.actor_params, state.obs_norm, obs))

        def finish(state: TrainState, env_state, qpos, qvel):
            data = env_state.data.replace(qpos=qpos, qvel=qvel)
            env_state, out = jax.vmap(env.finish_step)(env_state, data)
            style = learner.style_reward(state.disc_params, state.disc_norm, out.disc_obs)
            return env_state, (out.done, style, out.reward, out.task_metrics, out.target_changed)

        self._start = jax.jit(env.reset_batch)
        self._targets = jax.jit(targets)
        limits = env.cfg.physics.ball_axis_limits
        self._torque = jax.jit(jax.vmap(lambda q, t: pd.joint_torque(env.layout, q, t, limits)))
        self._finish = jax.jit(finish)

    def _load(self, data: mujoco.MjData, qpos, qvel) -> None:
        mujoco.mj_resetData(self.model, data)
        data.qpos[:], data.qvel[:] = qpos, qvel

    def _control_step(self, datas, target) -> np.ndarray:
        """Hold the PD targets [E, D] for a control step; which environments MuJoCo found unstable [E]."""
        before = [[d.warning[w].number for w in _INSTABILITY] for d in datas]
        for _ in range(self.env.substeps):
            qpos = np.stack([d.qpos for d in datas]).astype(np.float32)
            tau = np.asarray(self._torque(qpos, target), np.float64)
            for d, t in zip(datas, tau):
                d.qfrc_applied[6:] = t
                mujoco.mj_step(self.model, d)
        return np.array([[d.warning[w].number for w in _INSTABILITY] != b for d, b in zip(datas, before)])

    def __call__(self, state: TrainState, key) -> Record:
        """The Record of amp_jax.eval.rollout.make_rollout, from MuJoCo (without the reference poses)."""
        env_state = self._start(jax.random.split(key, self.num_envs))
        datas = [mujoco.MjData(self.model) for _ in range(self.num_envs)]
        for e, d in enumerate(datas):
            self._load(d, np.asarray(env_state.data.qpos[e]), np.asarray(env_state.data.qvel[e]))
        per_step = []
        for _ in range(self.num_steps):
            start_qpos = np.stack([d.qpos for d in datas]).astype(np.float32)
            unstable = self._control_step(datas, self._targets(state, env_state.obs))
            qpos = np.stack([d.qpos for d in datas])
            qpos[unstable] = np.nan  # a physics fault: the episode ends like a fall
            qvel = np.stack([d.qvel for d in datas])
            env_state, out = self._finish(state, env_state, jnp.asarray(qpos, jnp.float32),
                                          jnp.asarray(qvel, jnp.float32))
            out = jax.tree.map(np.asarray, out)
            for e in np.flatnonzero(out[0] != NULL):  # the environment reset that episode: MuJoCo follows
                self._load(datas[e], np.asarray(env_state.data.qpos[e]), np.asarray(env_state.data.qvel[e]))
            per_step.append((start_qpos, *out))
        qpos, *outputs = jax.tree.map(lambda *xs: np.stack(xs), *per_step)
        final = np.stack([d.qpos for d in datas]).astype(np.float32)[None]
        return Record(np.concatenate([qpos, final]), None, *outputs, tells=None)


def run_mujoco_rollouts(learner: Learner, env: AmpEnv, state: TrainState, num_episodes: int, num_envs: int,
                        seed: int = 0) -> evaluate.EvalRollouts:
    """evaluate.run_test_rollouts in MuJoCo: the same start states, the first ceil(num_episodes / num_envs)
    episodes of every environment."""
    per_env = evaluate.episodes_per_env(num_episodes, num_envs)
    rollout = MujocoRollout(learner, env, num_envs, per_env * env.episode_steps)
    return evaluate.collect_rollouts(rollout, state, per_env, seed)
