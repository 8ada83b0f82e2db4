"""Motion matching: how close a policy's poses stay to the reference motion, and how much of it they cover.

A pose feature describes one frame independently of where the character stands and which way it
faces. Its components, in this order:

  joint_rot    every joint's rotation, tangent-normal encoded (6 numbers per non-root body)
  root_tilt    the root rotation in the heading frame, tangent-normal encoded (pitch and roll; 6)
  root_height  the root's height above the floor (metres; 1)
  key_pos      key-body positions relative to the root, in the heading frame (metres; 3 per key body)

Weighting. Each component k is divided by its spread over the reference frames, the RMS distance of
the component from its mean, floored at MIN_SPREAD (per joint, per key body) so that a component the
clips barely vary (a walk's root height varies by 2 cm) cannot dominate; the squared component
distances are then averaged over the components:

    d(a, b)^2 = 1/4 * sum_k |a_k - b_k|^2 / spread_k^2

d = 0 for identical poses; two frames drawn at random from the reference are sqrt(2) apart in the
root-mean-square sense (less where a floor applies).

Scores of policy frames P against reference frames R (every clip from start to end at
REFERENCE_RATE times the control rate, so that a policy moving exactly like a clip between the
reference's control steps, as it does after a reference-state reset, is still close to it):

    stay  = mean over p in P of min over r in R of d(p, r)          "stays on the data"; 0 is best
    cover = fraction of r in R with min over p in P of d(p, r) <= NEAR   "covers the data"; 1 is best

NEAR = 0.5 lies between the distance of reference frames one control step apart (about 0.25 in the
fast spinkick, 0.15 in the locomotion clips) and that of unrelated poses (about 1.4).
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

from amp_jax import quat
from amp_jax.characters import kinematics
from amp_jax.characters.character import FIXED, Layout
from amp_jax.characters.pose import Pose
from amp_jax.motion.library import MotionLibrary

COMPONENTS = ("joint_rot", "root_tilt", "root_height", "key_pos")
# The smallest spread a component is divided by: per moving joint (tangent-normal units, about
# radians), for the root tilt, for the root height (m), per key body (m).
MIN_SPREAD = {"joint_rot": 0.1, "root_tilt": 0.1, "root_height": 0.05, "key_pos": 0.05}
NEAR = 0.5
REFERENCE_RATE = 4
_CHUNK = 1024  # policy frames per block of the nearest-neighbour search


def pose_features(layout: Layout, root_pos, root_rot, joint_rot):
    """Pose features [..., F] of frames (root position, root rotation, joint rotations [..., B, 4])."""
    body_pos, _ = kinematics.forward_kinematics(layout, root_pos, root_rot, joint_rot)
    h_inv = quat.heading_quat_inv(root_rot)
    joints = quat.tan_norm(joint_rot[..., 1:, :])
    key = quat.rotate(h_inv[..., None, :], body_pos[..., layout.key_body_ids, :] - root_pos[..., None, :])
    return jnp.concatenate([
        joints.reshape(*joints.shape[:-2], -1),
        quat.tan_norm(quat.mul(h_inv, root_rot)),
        root_pos[..., 2:3],
        key.reshape(*key.shape[:-2], -1),
    ], axis=-1)


def qpos_pose_features(layout: Layout, qpos):
    """Pose features [..., F] of MuJoCo poses qpos [..., nq]."""
    return pose_features(layout, *kinematics.qpos_frame(layout, qpos))


def component_slices(layout: Layout) -> dict[str, slice]:
    """Where each component lies in a pose feature."""
    sizes = {"joint_rot": 6 * (layout.num_bodies - 1), "root_tilt": 6, "root_height": 1,
             "key_pos": 3 * layout.num_key_bodies}
    out, start = {}, 0
    for name in COMPONENTS:
        out[name] = slice(start, start + sizes[name])
        start += sizes[name]
    return out


def reference_states(library: MotionLibrary, dt: float) -> tuple[Pose, np.ndarray]:
    """Every clip of a library sampled every dt seconds from its start to its end: the states and
    each frame's clip id."""
    lengths = np.asarray(library.clip_length, np.float64)
    counts = np.floor(lengths / dt + 1e-6).astype(int) + 1
    clip_ids = np.repeat(np.arange(len(lengths)), counts)
    times = np.concatenate([np.arange(n) * dt for n in counts]).astype(np.float32)
    return library.state(jnp.asarray(clip_ids), jnp.asarray(times)), clip_ids


@dataclasses.dataclass(frozen=True)
class MatchingReference:
    """Reference pose features, scaled so that Euclidean distance between scaled features is d."""

    features: np.ndarray  # [N, F] scaled
    scale: np.ndarray  # [F] what each feature dimension is divided by
    spread: dict  # component -> its spread (the RMS over the reference, or the floor)

    def scaled(self, features) -> np.ndarray:
        """Pose features [..., F] in the reference's scaled space (float64)."""
        return np.asarray(features, np.float64) / self.scale


def matching_reference(layout: Layout, features) -> MatchingReference:
    """The reference of pose features [N, F] of reference frames: spreads per component, floored."""
    features = np.asarray(features, np.float64)
    moving_joints = int(np.sum(np.asarray(layout.joint_kind)[1:] != FIXED))
    units = {"joint_rot": moving_joints, "root_tilt": 1, "root_height": 1, "key_pos": layout.num_key_bodies}
    scale = np.empty(features.shape[1])
    spread = {}
    for name, part in component_slices(layout).items():
        c = features[:, part]
        rms = float(np.sqrt(np.mean(np.sum((c - c.mean(axis=0)) ** 2, axis=1))))
        spread[name] = max(rms, MIN_SPREAD[name] * float(np.sqrt(units[name])))
        scale[part] = spread[name] * np.sqrt(len(COMPONENTS))
    return MatchingReference(features / scale, scale, spread)


def nearest_distances(a, b) -> tuple[np.ndarray, np.ndarray]:
    """For rows of a [M, F] and b [N, F]: each a row's distance to its nearest b row [M], and each b
    row's distance to its nearest a row [N]. Blocks of _CHUNK rows of a bound the memory."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    b_sq = np.sum(b * b, axis=1)
    a_to_b = np.empty(len(a))
    b_to_a = np.full(len(b), np.inf)
    for i in range(0, len(a), _CHUNK):
        block = a[i:i + _CHUNK]
        d2 = np.sum(block * block, axis=1)[:, None] + b_sq[None, :] - 2.0 * block @ b.T
        d2 = np.maximum(d2, 0.0)
        a_to_b[i:i + _CHUNK] = d2.min(axis=1)
        b_to_a = np.minimum(b_to_a, d2.min(axis=0))
    return np.sqrt(a_to_b), np.sqrt(b_to_a)


def matching_scores(reference: MatchingReference, policy_features) -> dict:
    """stay (mean distance of a policy frame to its nearest reference frame) and cover (the fraction
    of reference frames within NEAR of some policy frame) of policy pose features [..., F]."""
    policy = reference.scaled(policy_features).reshape(-1, reference.features.shape[1])
    to_ref, from_ref = nearest_distances(policy, reference.features)
    return {"stay": float(np.mean(to_ref)), "cover": float(np.mean(from_ref <= NEAR))}


def library_reference(layout: Layout, library: MotionLibrary, control_dt: float) -> MatchingReference:
    """The reference of a motion library's clips, sampled at REFERENCE_RATE times the control rate."""
    states, _ = reference_states(library, control_dt / REFERENCE_RATE)
    return matching_reference(layout, pose_features(layout, states.root_pos, states.root_rot, states.joint_rot))


def control_step_distance(layout: Layout, library: MotionLibrary, control_dt: float,
                          reference: MatchingReference) -> float:
    """The clips' own frame-to-frame spread: the mean distance d between frames of the same clip one
    control step apart (the scale against which "stays on the data" is judged)."""
    states, clip_ids = reference_states(library, control_dt)
    features = reference.scaled(pose_features(layout, states.root_pos, states.root_rot, states.joint_rot))
    same_clip = clip_ids[1:] == clip_ids[:-1]
    return float(np.mean(np.linalg.norm(features[1:] - features[:-1], axis=1)[same_clip]))
