"""The motion library: every clip of a dataset on device as flat per-frame arrays.

Sampling (clips by weight, times uniformly), interpolation (positions linearly, rotations by slerp;
velocities are those of the earlier frame, as in MimicKit), finite-difference velocities computed at
load time, and looping clips that carry their root offset from one cycle to the next.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from amp_jax import quat
from amp_jax.characters import kinematics
from amp_jax.characters.character import Layout
from amp_jax.characters.pose import Pose
from amp_jax.motion.clip import Clip


@struct.dataclass
class MotionLibrary:
    frames: Pose  # leading axis: every frame of every clip
    clip_start: jax.Array  # [C] index of the clip's first frame
    clip_frames: jax.Array  # [C]
    clip_length: jax.Array  # [C] seconds
    clip_weight: jax.Array  # [C] normalised to sum to 1
    clip_wrap_delta: jax.Array  # [C, 3] root displacement per cycle (0 for clamped clips)
    clip_loop: jax.Array  # [C] bool

    @property
    def num_clips(self) -> int:
        return self.clip_start.shape[0]

    def sample_clips(self, key, shape=()) -> jax.Array:
        """Clip ids drawn with probability proportional to the clip weights."""
        return jax.random.categorical(key, jnp.log(self.clip_weight), shape=shape)

    def sample_times(self, key, clip_ids) -> jax.Array:
        """Times drawn uniformly in [0, clip length)."""
        return jax.random.uniform(key, clip_ids.shape) * self.clip_length[clip_ids]

    def state(self, clip_ids, times) -> Pose:
        """Interpolated pose and velocities of clips at times (any shape, broadcast together)."""
        clip_ids, times = jnp.broadcast_arrays(clip_ids, times)
        length = self.clip_length[clip_ids]
        n = self.clip_frames[clip_ids]
        loop = self.clip_loop[clip_ids]
        phase = times / length
        phase = jnp.clip(jnp.where(loop, phase - jnp.floor(phase), phase), 0.0, 1.0)
        pos = phase * (n - 1)
        i0 = jnp.minimum(jnp.floor(pos).astype(jnp.int32), n - 1)
        i1 = jnp.minimum(i0 + 1, n - 1)
        alpha = pos - i0
        f0 = jax.tree.map(lambda x: x[self.clip_start[clip_ids] + i0], self.frames)
        f1 = jax.tree.map(lambda x: x[self.clip_start[clip_ids] + i1], self.frames)
        cycles = jnp.where(loop, jnp.floor(times / length), 0.0)
        root_pos = (1 - alpha[..., None]) * f0.root_pos + alpha[..., None] * f1.root_pos
        root_pos = root_pos + cycles[..., None] * self.clip_wrap_delta[clip_ids]
        return Pose(
            root_pos=root_pos,
            root_rot=quat.slerp(f0.root_rot, f1.root_rot, alpha),
            root_vel=f0.root_vel,
            root_ang_vel=f0.root_ang_vel,
            joint_rot=quat.slerp(f0.joint_rot, f1.joint_rot, alpha[..., None]),
            dof_vel=f0.dof_vel,
        )


def clip_velocities(layout: Layout, root_pos, root_rot, joint_rot, fps: float):
    """Forward-difference velocities of one clip; the last frame repeats the one before it."""
    root_vel = fps * (root_pos[1:] - root_pos[:-1])
    root_ang_vel = fps * quat.to_exp_map(quat.mul(root_rot[1:], quat.conj(root_rot[:-1])))
    local = quat.to_exp_map(quat.mul(quat.conj(joint_rot[:-1]), joint_rot[1:])) * fps  # [N-1, B, 3]
    j = layout.joints
    hinge = jnp.sum(local[:, j.hinge_bodies] * jnp.asarray(j.hinge_axis), axis=-1)
    dof_vel = kinematics.by_dof(layout, local[:, j.ball_bodies], hinge)

    def repeat_last(x):
        return jnp.concatenate([x, x[-1:]], axis=0)

    return repeat_last(root_vel), repeat_last(root_ang_vel), repeat_last(dof_vel)


def build_motion_library(layout: Layout, clips: Sequence[Clip], weights: Sequence[float] | None = None) -> MotionLibrary:
    """Concatenate validated clips (each with layout.num_dof DoFs) into a device-side library."""
    weights = np.ones(len(clips)) if weights is None else np.asarray(weights, np.float64)
    states, starts, counts, lengths, deltas, loops = [], [], [], [], [], []
    start = 0
    for clip in clips:
        root_pos = jnp.asarray(clip.root_pos, jnp.float32)
        root_rot = quat.normalize(jnp.asarray(clip.root_rot, jnp.float32))
        joint_rot = quat.positive_w(kinematics.dof_to_joint_rot(layout, jnp.asarray(clip.dof_pos, jnp.float32)))
        root_vel, root_ang_vel, dof_vel = clip_velocities(layout, root_pos, root_rot, joint_rot, clip.fps)
        states.append(Pose(root_pos, root_rot, root_vel, root_ang_vel, joint_rot, dof_vel))
        starts.append(start)
        counts.append(clip.num_frames)
        lengths.append(clip.length)
        delta = np.asarray(clip.root_pos[-1] - clip.root_pos[0], np.float32) * np.array([1, 1, 0], np.float32)
        deltas.append(delta if clip.loop else np.zeros(3, np.float32))
        loops.append(clip.loop)
        start += clip.num_frames
    frames = jax.tree.map(lambda *xs: jnp.concatenate(xs, axis=0), *states)
    return MotionLibrary(
        frames=frames,
        clip_start=jnp.asarray(starts, jnp.int32),
        clip_frames=jnp.asarray(counts, jnp.int32),
        clip_length=jnp.asarray(lengths, jnp.float32),
        clip_weight=jnp.asarray(weights / weights.sum(), jnp.float32),
        clip_wrap_delta=jnp.asarray(np.stack(deltas)),
        clip_loop=jnp.asarray(loops),
    )
