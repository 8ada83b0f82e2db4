"""Motion retargeting by per-frame inverse kinematics in JAX.

A clip of one character (the source) becomes a clip of another (the target) in three steps:

1. **Key-point IK.** Every frame, the target's root position, root rotation and DoFs are fitted by Adam
   (optax) to targets taken from the source pose:

   * positions of mapped bodies: the source body's world position scaled by s (ratio of the target's
     hip-to-ankle length to the source's), scaled about a ground point (the source root's ground
     projection at frame 0, with the source's sole height mapped to the target's), so the root height,
     the stride and the root path all scale together and a planted source foot stays planted; limb
     chains are then shifted by the difference of the characters' hip / shoulder placements
     (`Mapping.anchors`), so the target's feet land under its own hips; and as the target's stance is then
     wider or narrower than the scaled source's (k = its hip width over s times the source's), the hips'
     sideways sway about the feet is scaled by k (`humanoid.weight_shift`), so the body moves as far over
     its stance foot, for its stance, as the source's does;
   * directions of mapped segments (e.g. shoulder -> elbow): unit vectors, so limb proportions may differ;
   * world orientations of mapped bodies (root, feet, torso), through their zero-pose rotations
     (target rotation = source rotation * source rest^-1 * target rest), compared by tan-norm;
   * with the target's MjModel: a penalty for foot geoms below the floor, and for the lowest foot point
     above it while the source foot is in contact; and while it is not (humanoid targets), for the lowest
     foot point below the source foot's clearance (its lowest point above its lowest in the clip) scaled by
     s, so that a target whose feet are longer than the scaled source's (the Pi Plus's) lifts them instead
     of swinging its toes through the floor;
   * a penalty for DoFs outside [dof_low, dof_high], and small pulls toward the previous frame's DoFs and
     toward the rest pose.

   Frames are solved in order under `lax.scan`, each one warm-started from the previous solution (the first
   with more steps). Then the DoFs are clipped into their ranges.
2. **Feet.** Contact frames of each foot are detected on the source (foot height within `contact_height` of
   its lowest height in the clip and horizontal speed below `contact_speed`). During each contact interval
   the target foot's xy is pinned to its mean over the interval by a second IK pass (warm-started from the
   first, with the foot weight raised); intervals that wrap around a looping clip are merged using the
   clip's cycle offset. Finally the whole clip is lifted so that the lowest foot geom over the clip touches
   z = 0.
3. **Quality.** `RetargetResult.quality` has the mean / max key-point error (against the scaled source,
   with the final lift applied to both), the largest joint-range excess before clipping, the largest foot
   slide during contact, and foot heights during contact.

Source -> target mappings are given for our 28-DoF humanoid to G1, Pi Plus and SMPL (`MAPPINGS`).
`retarget_quadruped` maps the Laikago clips of the `motion-imitation` package (Apache-2.0) onto Go2 by
matching the (scaled) feet and root with the same solver. `retarget_file` is the command-line entry point.

Modules: `targets` (the key-point maps), `ik` (the JAX solver), `feet` (contacts, pinning, sole height),
`solve` (the pipeline above), `humanoid` and `quadruped` (the two paths); the geometry is
amp_jax.motion_tools.host_kinematics and the joint-range measure amp_jax.motion_tools.clip_quality's.
"""

from __future__ import annotations

from pathlib import Path

from amp_jax.catalog import ASSETS_DIR
from amp_jax.characters.character import load_character
from amp_jax.errors import InputError
from amp_jax.motion.clip import load_clip, save_clip
from amp_jax.motion_tools.retarget.feet import contact_intervals, contact_mask, sole_height
from amp_jax.motion_tools.retarget.humanoid import retarget, scaled_source_points
from amp_jax.motion_tools.retarget.ik import IKConfig
from amp_jax.motion_tools.retarget.quadruped import (
    LAIKAGO_LEG_ORDER,
    LAIKAGO_TOE_RADIUS,
    LaikagoMotion,
    laikago_fk,
    parse_laikago_motion,
    quadruped_target_points,
    read_motion_imitation_clip,
    retarget_quadruped,
)
from amp_jax.motion_tools.retarget.solve import RetargetResult
from amp_jax.motion_tools.retarget.targets import (
    HUMANOID_TO_G1,
    HUMANOID_TO_PI_PLUS,
    HUMANOID_TO_SMPL,
    MAPPINGS,
    Mapping,
)

__all__ = ["HUMANOID_TO_G1", "HUMANOID_TO_PI_PLUS", "HUMANOID_TO_SMPL", "IKConfig", "LAIKAGO_LEG_ORDER",
           "LAIKAGO_TOE_RADIUS", "LaikagoMotion", "MAPPINGS", "Mapping", "RetargetResult", "contact_intervals",
           "contact_mask", "laikago_fk", "load_target", "parse_laikago_motion", "quadruped_target_points",
           "read_motion_imitation_clip", "retarget", "retarget_file", "retarget_quadruped", "scaled_source_points",
           "sole_height"]

def load_target(name: str, assets: Path = ASSETS_DIR):
    """(Layout, MjModel) of one of our characters, assets/<name>/<name>.xml."""
    char = load_character(assets / name / f"{name}.xml")
    return char.layout, char.mj_model


def retarget_file(motion: str | Path, target: str, output: str | Path, *, source: str = "humanoid",
                  config: IKConfig = IKConfig(), assets: str | Path = ASSETS_DIR) -> dict:
    """Retarget a motion file onto one of our characters and write it as .npz; returns the quality dict.

    motion: an amp-jax .npz / MimicKit .pkl clip of `source` (humanoid -> g1, pi_plus or smpl), or, for
    target go2, a motion-imitation Laikago clip (.txt, e.g. dog_pace.txt).
    """
    assets = Path(assets)
    motion = Path(motion)
    tgt_layout, tgt_model = load_target(target, assets)
    if target == "go2":
        if motion.suffix != ".txt":
            raise InputError(f"{motion}: go2 retargeting reads a motion-imitation Laikago clip (.txt)")
        if not motion.is_file():
            raise InputError(f"{motion}: motion file not found")
        result = retarget_quadruped(parse_laikago_motion(motion.read_text(), str(motion)), tgt_layout, tgt_model,
                                    config=config)
    else:
        key = (source, target)
        if key not in MAPPINGS:
            raise InputError(f"no retargeting mapping from '{source}' to '{target}'; "
                             f"known: {sorted(f'{a}->{b}' for a, b in MAPPINGS)} and Laikago .txt -> go2")
        src_layout, src_model = load_target(source, assets)
        clip = load_clip(motion, src_layout.num_dof)
        result = retarget(clip, src_layout, tgt_layout, MAPPINGS[key], source_model=src_model,
                          target_model=tgt_model, config=config)
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    save_clip(output, result.clip)
    return result.quality

