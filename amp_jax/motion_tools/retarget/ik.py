"""The per-frame IK solver in JAX: Adam (optax) over root position, root rotation and DoFs of one frame
against position, direction and orientation targets, with floor, contact, clearance, joint-range and
smoothness terms; frames are solved in order under `lax.scan`, each warm-started from the previous solution."""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from amp_jax import quat
from amp_jax.characters.character import BALL, HINGE, Layout
from amp_jax.motion_tools.host_kinematics import GeomSet


@dataclasses.dataclass(frozen=True)
class IKConfig:
    first_steps: int = 600  # Adam steps for the first frame (from the rest pose)
    steps: int = 200  # Adam steps for every later frame (warm-started from the previous one)
    pin_steps: int = 200  # Adam steps per frame in the foot-pinning pass
    lr_start: float = 0.03  # learning rate, decayed geometrically to lr_end within each frame's steps
    lr_end: float = 3e-4
    w_pos: float = 100.0  # per m^2
    w_dir: float = 1.0
    w_rot: float = 1.0
    w_limit: float = 100.0  # per rad^2 outside the range
    w_prev: float = 1e-2  # pull toward the previous frame's DoFs
    w_rest: float = 3e-3  # pull toward the rest DoFs (keeps redundant DoFs: toes, wrists, spine, near rest)
    pin_weight: float = 4.0  # foot weight multiplier during contact in the pinning pass
    w_floor: float = 1000.0  # per m^2 of foot geom below z = 0
    w_contact: float = 300.0  # per m^2 of the lowest foot point's height while the source foot is in contact
    w_clearance: float = 10000.0  # per m^2 of the lowest foot point below the scaled source foot's clearance
    contact_height: float = 0.02  # m (source units) above the foot's lowest height in the clip
    contact_speed: float = 0.3  # m/s (source units), horizontal


class _LevelFK:
    """Single-pose forward kinematics batched by tree depth: the same result as `fk`, in a few large ops
    instead of a few per body, which makes the IK step several times faster to compile."""

    def __init__(self, layout: Layout):
        self.layout = layout
        nb = layout.num_bodies
        depth = np.zeros(nb, int)
        for j in range(1, nb):
            depth[j] = depth[layout.parents[j]] + 1
        self.levels = [np.where(depth == d)[0] for d in range(1, depth.max() + 1)]
        order = np.concatenate([[0]] + self.levels)
        self.slot = np.empty(nb, int)
        self.slot[order] = np.arange(nb)  # body b sits at slot[b] in depth order
        idx = np.arange(nb)
        self.hinge = np.where((layout.joint_kind == HINGE) & (idx > 0))[0]
        self.ball = np.where((layout.joint_kind == BALL) & (idx > 0))[0]
        self.hinge_dof = layout.dof_start[self.hinge]
        self.ball_dof = layout.dof_start[self.ball][:, None] + np.arange(3)

    def __call__(self, root_pos, root_rot, dof):
        lay = self.layout
        q = jnp.broadcast_to(jnp.array([1.0, 0.0, 0.0, 0.0], jnp.float32), (lay.num_bodies, 4))
        if len(self.hinge):
            q = q.at[self.hinge].set(quat.from_axis_angle(jnp.asarray(lay.joint_axis[self.hinge]), dof[self.hinge_dof]))
        if len(self.ball):
            q = q.at[self.ball].set(quat.from_exp_map(dof[self.ball_dof]))
        local = quat.mul(jnp.asarray(lay.body_quat), q)
        offsets = jnp.asarray(lay.body_pos)
        pos, rot = [root_pos[None]], [root_rot[None]]
        for level in self.levels:
            all_pos, all_rot = jnp.concatenate(pos), jnp.concatenate(rot)
            parent = self.slot[lay.parents[level]]
            parent_rot = all_rot[parent]
            pos.append(all_pos[parent] + quat.rotate(parent_rot, offsets[level]))
            rot.append(quat.mul(parent_rot, local[level]))
        return jnp.concatenate(pos)[self.slot], jnp.concatenate(rot)[self.slot]


@functools.lru_cache(maxsize=32)
def _level_fk(layout: Layout) -> _LevelFK:
    return _LevelFK(layout)


def _jnp_geom_bottoms(geoms: GeomSet, body_pos, body_rot):
    """geom_bottoms of one pose in JAX (differentiable)."""
    bpos, brot = body_pos[geoms.body], body_rot[geoms.body]
    gpos = bpos + quat.rotate(brot, jnp.asarray(geoms.pos))
    zrow = quat.to_matrix(quat.mul(brot, jnp.asarray(geoms.quat)))[..., 2, :]
    return gpos[..., 2] - jnp.sum(jnp.abs(zrow) * jnp.asarray(geoms.extent), axis=-1) - jnp.asarray(geoms.radius)


@dataclasses.dataclass(frozen=True)
class Problem:
    """Static part of an IK problem: which target bodies the terms act on."""

    layout: Layout
    pos_body: tuple[int, ...]
    dir_a: tuple[int, ...]
    dir_b: tuple[int, ...]
    dir_w: tuple[float, ...]
    rot_body: tuple[int, ...]
    rot_w: tuple[float, ...]
    geoms: GeomSet | None = None  # the target's foot geoms, for the floor, contact and clearance terms


def _frame_loss(prob: Problem, cfg: IKConfig, x, ref_rot, tgt, prev_dof, rest_dof):
    layout = prob.layout
    root_rot = quat.normalize(quat.mul(ref_rot, quat.from_exp_map(x["rot"])))
    bp, br = _level_fk(layout)(x["pos"], root_rot, x["dof"])
    loss = 0.0
    if prob.pos_body:
        d = bp[np.array(prob.pos_body)] - tgt["pos"]
        loss += cfg.w_pos * jnp.sum(tgt["pos_w"] * jnp.sum(d * d, axis=-1))
    if prob.dir_a:
        v = bp[np.array(prob.dir_b)] - bp[np.array(prob.dir_a)]
        v = v / jnp.maximum(jnp.linalg.norm(v, axis=-1, keepdims=True), 1e-6)
        d = v - tgt["dir"]
        loss += cfg.w_dir * jnp.sum(jnp.asarray(prob.dir_w) * jnp.sum(d * d, axis=-1))
    if prob.rot_body:
        d = quat.tan_norm(br[np.array(prob.rot_body)]) - quat.tan_norm(tgt["rot"])
        loss += cfg.w_rot * jnp.sum(jnp.asarray(prob.rot_w) * jnp.sum(d * d, axis=-1))
    if prob.geoms is not None:
        z = _jnp_geom_bottoms(prob.geoms, bp, br)
        loss += cfg.w_floor * jnp.sum(jax.nn.relu(-z) ** 2)
        lowest = jnp.stack([jnp.min(z[prob.geoms.group == f]) for f in range(int(prob.geoms.group.max()) + 1)])
        loss += cfg.w_contact * jnp.sum(tgt["contact"] * lowest ** 2)
        if "clearance" in tgt:
            loss += cfg.w_clearance * jnp.sum(jax.nn.relu(tgt["clearance"] - lowest) ** 2)
    dof = x["dof"]
    excess = jax.nn.relu(dof - jnp.asarray(layout.dof_high)) + jax.nn.relu(jnp.asarray(layout.dof_low) - dof)
    loss += cfg.w_limit * jnp.sum(excess * excess)
    loss += cfg.w_prev * jnp.sum((dof - prev_dof) ** 2) + cfg.w_rest * jnp.sum((dof - rest_dof) ** 2)
    return loss


@functools.partial(jax.jit, static_argnums=(0, 1))
def _solve_frames(prob: Problem, cfg: IKConfig, targets, init, use_init, n_steps, rest_dof):
    """Solve the frames in order. targets: per-frame dict; init: per-frame root_pos/root_rot/dof;
    use_init[t]: start from init[t] (else from the previous solution); n_steps[t]: Adam steps."""
    adam = optax.scale_by_adam()
    grad_fn = jax.grad(lambda x, *a: _frame_loss(prob, cfg, x, *a))

    def solve_one(carry, inp):
        tgt, ini, use, n = inp
        start = jax.tree.map(lambda a, b: jnp.where(use, a, b), ini, carry)
        ref_rot = start["root_rot"]
        x = {"pos": start["root_pos"], "rot": jnp.zeros(3, jnp.float32), "dof": start["dof"]}
        prev_dof = carry["dof"]
        nf = jnp.maximum(n.astype(jnp.float32), 1.0)

        def step(k, state):
            x, opt = state
            g = grad_fn(x, ref_rot, tgt, prev_dof, rest_dof)
            upd, opt = adam.update(g, opt)
            lr = cfg.lr_start * (cfg.lr_end / cfg.lr_start) ** (k.astype(jnp.float32) / nf)
            x = jax.tree.map(lambda p, u: p - lr * u, x, upd)
            return x, opt

        x, _ = jax.lax.fori_loop(0, n, step, (x, adam.init(x)))
        sol = {"root_pos": x["pos"], "root_rot": quat.normalize(quat.mul(ref_rot, quat.from_exp_map(x["rot"]))),
               "dof": x["dof"]}
        sol["root_rot"] = quat.positive_w(sol["root_rot"])
        return sol, sol

    first = jax.tree.map(lambda a: a[0], init)
    _, sols = jax.lax.scan(solve_one, first, (targets, init, use_init, n_steps))
    return sols


def run_ik(prob, cfg, targets, init, use_init, n_steps, rest_dof):
    targets = {k: jnp.asarray(v, jnp.float32) for k, v in targets.items()}
    init = {k: jnp.asarray(v, jnp.float32) for k, v in init.items()}
    sols = _solve_frames(prob, cfg, targets, init, jnp.asarray(use_init), jnp.asarray(n_steps, jnp.int32),
                         jnp.asarray(rest_dof, jnp.float32))
    return {k: np.asarray(v, np.float64) for k, v in sols.items()}


