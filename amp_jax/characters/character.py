"""Characters: an MJCF file normalised for MJX, plus the layout that maps DoFs, bodies and actions.

The loader accepts MimicKit-style character files (three hinges `<name>_x/_y/_z` on one body for a
3-DoF joint, PD gains in joint stiffness/damping, torque limits in actuatorfrcrange or motor gears;
angles in radians or degrees: joint ranges are read from MuJoCo's compilation of the file) and turns
them into what amp-jax simulates:

* each 3-hinge group becomes one ball joint whose DoF coordinates are its exponential map;
* the PD servo is computed by amp-jax (`amp_jax.envs.pd`): passive stiffness is zeroed, the servo's
  damping term becomes the joint's damping (integrated implicitly by MuJoCo's Euler integrator, which
  keeps kd = 100 stable at 120 Hz), the stiffness term is applied explicitly and clipped;
* a floor plane and explicit floor/foot contact pairs are added (MJX is slow with all-pairs collision);
  the other bodies do not touch the floor: touching it with one of them ends the episode. With
  `env.physics.self_collision`, explicit pairs also make the limbs collide with each other and with the
  trunk (`limbs`);
* the solver options are set for speed.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import mujoco
import numpy as np

from amp_jax.config import PhysicsConfig
from amp_jax.errors import InputError

HINGE, BALL, FIXED = 1, 3, 0  # joint kinds, by their DoF count


@dataclasses.dataclass(frozen=True, eq=False)
class JointIndex:
    """Where every ball and hinge joint sits, as index arrays: code handles all joints of a kind at once
    (gather per kind, compute, one gather back into body, DoF or qpos order) instead of looping over bodies."""

    ball_bodies: np.ndarray  # [Nb] body index of each ball joint
    ball_dofs: np.ndarray  # [Nb, 3]
    ball_qpos: np.ndarray  # [Nb, 4]
    hinge_bodies: np.ndarray  # [Nh]
    hinge_dofs: np.ndarray  # [Nh]
    hinge_qpos: np.ndarray  # [Nh]
    hinge_axis: np.ndarray  # [Nh, 3]
    body_order: np.ndarray  # [B] index into [identity, balls..., hinges...] (0: the root and fixed joints)
    dof_order: np.ndarray  # [D] index into [ball DoFs (Nb x 3) flattened..., hinge DoFs...]
    qpos_order: np.ndarray  # [nq - 7] index into [ball quaternions (Nb x 4) flattened..., hinge angles...]


@dataclasses.dataclass(frozen=True, eq=False)
class Layout:
    """Static (numpy) description of a character's kinematic tree, DoFs and actions.

    Bodies are indexed in depth-first MJCF order with the root at 0 (MuJoCo body id - 1).
    """

    name: str
    body_names: tuple[str, ...]
    parents: np.ndarray  # [B] parent body index, -1 for the root
    body_pos: np.ndarray  # [B, 3] offset in the parent frame
    body_quat: np.ndarray  # [B, 4] rotation in the parent frame (w, x, y, z)
    joint_kind: np.ndarray  # [B] FIXED, HINGE or BALL (the root's entry is FIXED and unused)
    joint_axis: np.ndarray  # [B, 3] hinge axis in the body frame
    dof_start: np.ndarray  # [B] first DoF of the body's joint
    qpos_adr: np.ndarray  # [B] first qpos index of the body's joint
    dof_names: tuple[str, ...]
    dof_low: np.ndarray  # [D] authored range per DoF in radians (per axis for ball joints)
    dof_high: np.ndarray
    kp: np.ndarray  # [D] PD stiffness
    kd: np.ndarray  # [D] PD damping
    torque_limit: np.ndarray  # [D]
    action_low: np.ndarray  # [D] PD-target bounds (MimicKit's rule, see action_bounds)
    action_high: np.ndarray
    key_body_ids: np.ndarray  # [K]
    contact_body_ids: np.ndarray  # bodies allowed to touch the floor
    # Geoms whose contact with the floor ends an episode (all geoms of non-contact bodies).
    fail_geom_body: np.ndarray  # [G]
    fail_geom_pos: np.ndarray  # [G, 3] in the body frame
    fail_geom_quat: np.ndarray  # [G, 4]
    fail_geom_extent: np.ndarray  # [G, 3] box half-sizes (capsule: (0, 0, half length))
    fail_geom_radius: np.ndarray  # [G] sphere / capsule radius (0 for boxes)

    @property
    def num_bodies(self) -> int:
        return len(self.body_names)

    @property
    def num_dof(self) -> int:
        return len(self.dof_names)

    @property
    def num_key_bodies(self) -> int:
        return len(self.key_body_ids)

    @property
    def frame_width(self) -> int:
        """Width of a MimicKit motion frame: root pos (3), root exp-map (3), DoFs."""
        return 6 + self.num_dof

    @functools.cached_property
    def joints(self) -> JointIndex:
        """The index arrays of every joint kind (made once, from joint_kind, dof_start, qpos_adr)."""
        ball = np.flatnonzero((self.joint_kind == BALL) & (np.arange(self.num_bodies) > 0))
        hinge = np.flatnonzero((self.joint_kind == HINGE) & (np.arange(self.num_bodies) > 0))
        ball_dofs = self.dof_start[ball, None] + np.arange(3)
        ball_qpos = self.qpos_adr[ball, None] + np.arange(4)
        body_order = np.zeros(self.num_bodies, np.int32)
        body_order[ball] = 1 + np.arange(len(ball))
        body_order[hinge] = 1 + len(ball) + np.arange(len(hinge))
        dof_order = np.empty(self.num_dof, np.int32)
        dof_order[ball_dofs.ravel()] = np.arange(ball_dofs.size)
        dof_order[self.dof_start[hinge]] = ball_dofs.size + np.arange(len(hinge))
        qpos_order = np.full(ball_qpos.size + len(hinge), -1, np.int32)  # stays -1 for a hand-made layout
        if np.all(self.qpos_adr[np.concatenate([ball, hinge])] >= 7):  # without MuJoCo addresses (retarget's)
            qpos_order[ball_qpos.ravel() - 7] = np.arange(ball_qpos.size)
            qpos_order[self.qpos_adr[hinge] - 7] = ball_qpos.size + np.arange(len(hinge))
        return JointIndex(ball, ball_dofs, ball_qpos, hinge, self.dof_start[hinge], self.qpos_adr[hinge],
                          self.joint_axis[hinge], body_order, dof_order, qpos_order)


@dataclasses.dataclass(frozen=True, eq=False)
class Character:
    """A compiled, MJX-ready MuJoCo model with its layout."""

    xml_path: Path
    mj_model: mujoco.MjModel
    layout: Layout
    physics: PhysicsConfig


def action_bounds(kind: np.ndarray, dof_start: np.ndarray, low: np.ndarray, high: np.ndarray,
                  zero_center: bool) -> tuple[np.ndarray, np.ndarray]:
    """PD-target bounds per DoF, as MimicKit computes them from the joint ranges.

    Ball joint: all three components in [-s, s], s = 1.2 * max over axes of max(|lo|, |hi|).
    Hinge: [mid - s, mid + s] with mid the range centre (0 if zero_center), s = 1.4 * max distance
    of the range ends from mid.
    """
    a_low, a_high = np.zeros_like(low), np.zeros_like(high)
    for j, k in enumerate(kind):
        s0 = dof_start[j]
        if k == BALL:
            sl = slice(s0, s0 + 3)
            s = 1.2 * np.max(np.maximum(np.abs(low[sl]), np.abs(high[sl])))
            a_low[sl], a_high[sl] = -s, s
        elif k == HINGE:
            mid = 0.0 if zero_center else 0.5 * (low[s0] + high[s0])
            s = 1.4 * max(abs(high[s0] - mid), abs(low[s0] - mid))
            a_low[s0], a_high[s0] = mid - s, mid + s
    return a_low, a_high


def _dfs_bodies(path, spec: mujoco.MjSpec):
    """[(body spec, parent index)] in depth-first order, the root first."""
    roots = spec.worldbody.bodies
    if len(roots) != 1:
        raise InputError(f"{path}: expected exactly one character body under <worldbody>, found {len(roots)}")
    bodies = []
    _visit(roots[0], -1, bodies)
    return bodies


def _visit(body, parent, out):
    out.append((body, parent))
    me = len(out) - 1
    for child in body.bodies:
        _visit(child, me, out)


def _torque_limits(spec: mujoco.MjSpec) -> dict[str, float]:
    """Motor gear per joint name (MimicKit files give torque limits as motor gears)."""
    limits = {}
    for act in spec.actuators:
        if act.target:
            limits[act.target] = float(abs(act.gear[0]))
    return limits


def _joint_group(path, body, joints):
    """Classify a body's joints: (kind, base name, per-axis hinges)."""
    if not joints:
        return FIXED, None, []
    types = [j.type for j in joints]
    if any(t != mujoco.mjtJoint.mjJNT_HINGE for t in types):
        if len(joints) == 1 and types[0] == mujoco.mjtJoint.mjJNT_BALL:
            raise InputError(f"{path}: body '{body.name}': write 3-DoF joints as three hinges "
                             "<name>_x/_y/_z (amp-jax turns them into a ball joint)")
        raise InputError(f"{path}: body '{body.name}': only hinge joints are supported, found {types}")
    for j in joints:
        if not np.linalg.norm(j.axis) > 0:
            raise InputError(f"{path}: joint '{j.name}' has a zero axis")
        if np.any(np.abs(j.pos) > 1e-9):
            raise InputError(f"{path}: joint '{j.name}' has a non-zero pos; joints must sit at the body origin")
    if len(joints) == 1:
        return HINGE, joints[0].name, joints
    if len(joints) == 3:
        axes = np.array([j.axis / np.linalg.norm(j.axis) for j in joints])
        if not np.allclose(axes, np.eye(3), atol=1e-6):
            raise InputError(f"{path}: body '{body.name}': a 3-DoF joint needs hinge axes x, y, z in that "
                             f"order, found {axes.tolist()}")
        base = joints[0].name
        base = base[:-2] if base.endswith("_x") else base
        return BALL, base, joints
    raise InputError(f"{path}: body '{body.name}' has {len(joints)} joints; the layout maps 0, 1 or 3")


def load_character(xml_path: str | Path, key_bodies=(), contact_bodies=(), physics: PhysicsConfig = PhysicsConfig(),
                   zero_center_action: bool = False) -> Character:
    """Load and normalise a character MJCF file (key and contact bodies by name: a case's env settings; the
    offline tools need neither). Raises InputError naming the file and the problem."""
    path = Path(xml_path)
    if not path.is_file():
        raise InputError(f"{path}: character file not found")
    try:
        spec = mujoco.MjSpec.from_file(str(path))
    except Exception as e:  # MuJoCo's own parse error
        raise InputError(f"{path}: not a valid MJCF file: {e}") from None
    if physics.sim_freq % physics.control_freq:
        raise InputError(f"sim_freq {physics.sim_freq} must be a multiple of control_freq {physics.control_freq}")

    gears = _torque_limits(spec)
    bodies = _dfs_bodies(path, spec)
    try:  # the file as written, compiled: its joint ranges in radians whatever the file's angle unit
        authored = spec.compile()
    except Exception as e:
        raise InputError(f"{path}: MuJoCo could not compile the file: {e}") from None
    ranges = [[authored.jnt_range[j.id] for j in body.joints] for body, _ in bodies]  # before the edits below
    root = bodies[0][0]
    root_joints = list(root.joints)
    if len(root_joints) != 1 or root_joints[0].type != mujoco.mjtJoint.mjJNT_FREE:
        raise InputError(f"{path}: the root body '{root.name}' needs exactly one free joint")

    names = tuple(b.name for b, _ in bodies)
    by_name = {n: i for i, n in enumerate(names)}

    def body_ids(requested, what):
        unknown = [n for n in requested if n not in by_name]
        if unknown:
            raise InputError(f"{path}: unknown {what} {unknown}; bodies are {list(names)}")
        return np.array([by_name[n] for n in requested], np.int32)

    key_ids = body_ids(key_bodies, "key body")
    contact_ids = body_ids(contact_bodies, "contact body")

    kinds, axes, dof_names, lo, hi, kp, kd, tau = [], [], [], [], [], [], [], []
    for body_ranges, (body, _) in zip(ranges[1:], bodies[1:]):
        joints = list(body.joints)
        kind, base, group = _joint_group(path, body, joints)
        kinds.append(kind)
        axes.append(group[0].axis / np.linalg.norm(group[0].axis) if kind == HINGE else np.zeros(3))
        for j, (j_lo, j_hi) in zip(group, body_ranges):
            dof_names.append(j.name)
            lo.append(j_lo)
            hi.append(j_hi)
            kp.append(j.stiffness[0])
            kd.append(j.damping[0])
            limit = j.actfrcrange[1] if j.actfrclimited != mujoco.mjtLimited.mjLIMITED_FALSE and j.actfrcrange[1] > 0 else gears.get(j.name)
            if limit is None or limit <= 0:
                raise InputError(f"{path}: joint '{j.name}' has no torque limit (actuatorfrcrange or motor gear)")
            tau.append(limit)
        if kind == BALL:
            # A ball joint has one damping and one armature: the group's largest.
            armature = max(j.armature for j in group)
            kd[-3:] = [max(kd[-3:])] * 3
            limit = float(max(np.abs(j.range).max() for j in group))  # in the file's angle unit, as the spec compiles
            for j in group:
                spec.delete(j)
            body.add_joint(name=base, type=mujoco.mjtJoint.mjJNT_BALL, armature=armature,
                           damping=[kd[-1], 0, 0], limited=mujoco.mjtLimited.mjLIMITED_TRUE,
                           range=[0.0, limit])
        elif kind == HINGE:
            j = group[0]
            j.stiffness = [0.0, 0.0, 0.0]
            j.damping = [kd[-1], 0.0, 0.0]
    for act in list(spec.actuators):
        spec.delete(act)

    _add_floor_and_contacts(spec, bodies, contact_ids, physics)
    if physics.self_collision:
        _add_self_pairs(path, spec, bodies)
    try:
        model = spec.compile()
    except Exception as e:
        raise InputError(f"{path}: MuJoCo could not compile the normalised character: {e}") from None

    kinds = np.array([FIXED] + kinds, np.int32)
    dof_count = np.where(kinds == BALL, 3, np.where(kinds == HINGE, 1, 0))
    dof_count[0] = 0
    dof_start = np.concatenate([[0], np.cumsum(dof_count)[:-1]]).astype(np.int32)
    num_dof = int(dof_count.sum())
    if model.nv != 6 + num_dof:
        raise InputError(f"{path}: internal layout mismatch: nv={model.nv}, DoFs={num_dof}")
    qpos_adr = np.zeros(len(names), np.int32)
    for i in range(1, len(names)):
        bid = i + 1  # MuJoCo body id (0 is the world)
        if model.body_jntnum[bid] == 1:
            qpos_adr[i] = model.jnt_qposadr[model.body_jntadr[bid]]

    lo, hi = np.array(lo, np.float32), np.array(hi, np.float32)
    a_low, a_high = action_bounds(kinds, dof_start, lo, hi, zero_center_action)
    fail = _fail_geoms(model, contact_ids)
    layout = Layout(
        name=path.stem,
        body_names=names,
        parents=np.array([p for _, p in bodies], np.int32),
        body_pos=model.body_pos[1:].astype(np.float32),
        body_quat=model.body_quat[1:].astype(np.float32),
        joint_kind=kinds,
        joint_axis=np.array([np.zeros(3)] + axes, np.float32),
        dof_start=dof_start,
        qpos_adr=qpos_adr,
        dof_names=tuple(dof_names),
        dof_low=lo,
        dof_high=hi,
        kp=np.array(kp, np.float32),
        kd=np.array(kd, np.float32),
        torque_limit=np.array(tau, np.float32),
        action_low=a_low.astype(np.float32),
        action_high=a_high.astype(np.float32),
        key_body_ids=key_ids,
        contact_body_ids=contact_ids,
        **fail,
    )
    return Character(xml_path=path, mj_model=model, layout=layout, physics=physics)


def _add_floor_and_contacts(spec, bodies, contact_ids, physics: PhysicsConfig):
    """Floor plane, explicit floor pairs for the contact bodies' geoms, and solver options."""
    for body, _ in bodies:
        for g in body.geoms:
            g.contype = 0
            g.conaffinity = 0
    tex = spec.add_texture(name="grid", type=mujoco.mjtTexture.mjTEXTURE_2D,
                           builtin=mujoco.mjtBuiltin.mjBUILTIN_CHECKER, width=512, height=512,
                           rgb1=[0.45, 0.5, 0.55], rgb2=[0.3, 0.35, 0.4], mark=mujoco.mjtMark.mjMARK_EDGE,
                           markrgb=[0.8, 0.8, 0.8])
    del tex
    mat = spec.add_material(name="grid", texrepeat=[1, 1], texuniform=True, reflectance=0.1)
    mat.textures[mujoco.mjtTextureRole.mjTEXROLE_RGB] = "grid"
    floor = spec.worldbody.add_geom(name="floor", type=mujoco.mjtGeom.mjGEOM_PLANE, size=[0, 0, 0.05],
                                    material="grid", contype=0, conaffinity=0)
    del floor
    spec.worldbody.add_light(name="sun", pos=[0, 0, 4], dir=[0, 0, -1], type=mujoco.mjtLightType.mjLIGHT_DIRECTIONAL)
    for i in contact_ids:
        for g in bodies[i][0].geoms:
            spec.add_pair(geomname1="floor", geomname2=g.name, condim=3,
                          friction=[physics.floor_friction, physics.floor_friction, 0.005, 0.0001, 0.0001])
    opt = spec.option
    opt.timestep = 1.0 / physics.sim_freq
    opt.integrator = mujoco.mjtIntegrator.mjINT_EULER
    opt.solver = mujoco.mjtSolver.mjSOL_NEWTON
    opt.iterations = physics.solver_iterations
    opt.ls_iterations = physics.ls_iterations
    opt.cone = mujoco.mjtCone.mjCONE_PYRAMIDAL
    opt.jacobian = {"auto": mujoco.mjtJacobian.mjJAC_AUTO, "dense": mujoco.mjtJacobian.mjJAC_DENSE,
                    "sparse": mujoco.mjtJacobian.mjJAC_SPARSE}[physics.jacobian]
    if not physics.euler_damping:
        opt.disableflags |= mujoco.mjtDisableBit.mjDSBL_EULERDAMP


def limbs(parents) -> list[int]:
    """Per body, the limb it belongs to (-1: the trunk). The trunk is the root, every body with three or
    more children and the bodies between them and the root; a limb is the subtree of a trunk body's child
    that is not in the trunk (a leg, an arm with what it holds, the neck and head)."""
    parents = [int(p) for p in parents]
    children = [0] * len(parents)
    for p in parents[1:]:
        children[p] += 1
    trunk = {0}
    for b in range(len(parents)):
        if children[b] >= 3:
            while b > 0:
                trunk.add(b)
                b = parents[b]
    limb, starts = [-1] * len(parents), []
    for b in range(1, len(parents)):  # depth-first order: a parent comes before its children
        if b in trunk:
            continue
        if parents[b] in trunk:
            starts.append(b)
            limb[b] = len(starts) - 1
        else:
            limb[b] = limb[parents[b]]
    return limb


def _add_self_pairs(path, spec, bodies):
    """Contact pairs between the geoms of different limbs and between limbs and the trunk (MJX is slow
    with all-pairs collision), leaving out bodies joined by a joint (parent and child) and geoms that
    already overlap in the rest pose."""
    parents = [p for _, p in bodies]
    limb = limbs(parents)
    geoms = [(b, g) for b, (body, _) in enumerate(bodies) for g in body.geoms]
    for k, (b, g) in enumerate(geoms):
        if not g.name:
            g.name = f"{bodies[b][0].name}_geom{k}"
    try:
        model = spec.compile()
    except Exception as e:
        raise InputError(f"{path}: MuJoCo could not compile the normalised character: {e}") from None
    data = mujoco.MjData(model)
    mujoco.mj_kinematics(model, data)
    fromto = np.zeros(6)
    for i, (b1, g1) in enumerate(geoms):
        for b2, g2 in geoms[i + 1:]:
            if limb[b1] == limb[b2] or parents[b1] == b2 or parents[b2] == b1:
                continue  # the same limb, or both trunk; or a joint between them
            if mujoco.mj_geomDistance(model, data, g1.id, g2.id, 0.0, fromto) < 0.0:
                continue  # overlapping at rest
            spec.add_pair(geomname1=g1.name, geomname2=g2.name, condim=3,
                          friction=[1.0, 1.0, 0.005, 0.0001, 0.0001])


def geom_extent(model: mujoco.MjModel, g: int) -> tuple[np.ndarray, float]:
    """A geom's shape as (box half-extents in its frame, radius): its lowest point is its centre's z
    minus sum_i |R[2, i]| extent_i minus radius. Spheres (0, r), capsules ((0, 0, half length), r),
    boxes (half sizes, 0); other shapes are bounded by their bounding sphere."""
    gtype, size = model.geom_type[g], model.geom_size[g]
    if gtype == mujoco.mjtGeom.mjGEOM_SPHERE:
        return np.zeros(3), float(size[0])
    if gtype == mujoco.mjtGeom.mjGEOM_CAPSULE:
        return np.array([0.0, 0.0, size[1]]), float(size[0])
    if gtype == mujoco.mjtGeom.mjGEOM_BOX:
        return size.copy(), 0.0
    return np.zeros(3), float(model.geom_rbound[g])


def _fail_geoms(model: mujoco.MjModel, contact_ids) -> dict:
    """Shapes of the geoms whose floor contact ends an episode."""
    body, pos, quat, extent, radius = [], [], [], [], []
    contact_mj = set(int(i) + 1 for i in contact_ids)
    for g in range(model.ngeom):
        bid = int(model.geom_bodyid[g])
        if bid == 0 or bid in contact_mj:
            continue
        e, r = geom_extent(model, g)
        body.append(bid - 1)
        pos.append(model.geom_pos[g])
        quat.append(model.geom_quat[g])
        extent.append(e)
        radius.append(r)
    return dict(
        fail_geom_body=np.array(body, np.int32),
        fail_geom_pos=np.array(pos, np.float32).reshape(-1, 3),
        fail_geom_quat=np.array(quat, np.float32).reshape(-1, 4),
        fail_geom_extent=np.array(extent, np.float32).reshape(-1, 3),
        fail_geom_radius=np.array(radius, np.float32),
    )
