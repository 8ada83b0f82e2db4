"""Source -> target key-point maps: which source bodies drive which target bodies, per character pair."""

from __future__ import annotations

import dataclasses

from amp_jax.characters.character import Layout
from amp_jax.errors import InputError


@dataclasses.dataclass(frozen=True)
class Mapping:
    """How a source skeleton's bodies drive a target skeleton's.

    positions: (source body, target body, weight): world positions to match after scaling.
    directions: (source a, source b, target a, target b, weight): unit vector a -> b to match.
    orientations: (source body, target body, weight): world orientations to match (via zero-pose rests).
    feet: (source foot, target foot): contact handling; each pair must also be in `positions`.
    legs: (source hip, source ankle, target hip, target ankle): the scale s is the mean ratio of the
        target's to the source's hip-to-ankle distance at the zero pose.
    anchors: (source anchor, target anchor, target bodies[, source frame body]): the position targets of
        these target bodies are shifted by the difference of the anchors' rest offsets from the hip centre
        (the mean of the legs' hip bodies), target - s * source, carried by the source frame body's
        rotation (relative to its rest), or by the source root's heading when no frame body is given. This
        keeps the target's own proportions: its feet are placed under its hips and its hands hang from its
        shoulders, not the scaled source's.
    """

    positions: tuple[tuple[str, str, float], ...]
    feet: tuple[tuple[str, str], ...]
    legs: tuple[tuple[str, str, str, str], ...]
    directions: tuple[tuple[str, str, str, str, float], ...] = ()
    orientations: tuple[tuple[str, str, float], ...] = ()
    anchors: tuple[tuple, ...] = ()

    @property
    def target_feet(self) -> tuple[str, ...]:
        return tuple(t for _, t in self.feet)


def _sided(template, sides):
    """Expand entries for each (source side, target side): '{s}' and '{t}' in their strings (also inside
    nested tuples) become the sides."""
    def fill(x, a, b):
        if isinstance(x, str):
            return x.format(s=a, t=b)
        if isinstance(x, tuple):
            return tuple(fill(y, a, b) for y in x)
        return x

    return tuple(fill(entry, a, b) for a, b in sides for entry in template)


_HUMANOID_SIDES = (("left", "left"), ("right", "right"))

HUMANOID_TO_G1 = Mapping(
    positions=_sided((("{s}_thigh", "{t}_hip_roll_link", 1.0), ("{s}_shin", "{t}_knee_link", 0.5),
                      ("{s}_foot", "{t}_ankle_roll_link", 3.0), ("{s}_upper_arm", "{t}_shoulder_roll_link", 0.3),
                      ("{s}_hand", "{t}_wrist_yaw_link", 0.2)), _HUMANOID_SIDES),
    feet=(("left_foot", "left_ankle_roll_link"), ("right_foot", "right_ankle_roll_link")),
    legs=(("left_thigh", "left_foot", "left_hip_roll_link", "left_ankle_roll_link"),
          ("right_thigh", "right_foot", "right_hip_roll_link", "right_ankle_roll_link")),
    directions=_sided((("{s}_thigh", "{s}_shin", "{t}_hip_roll_link", "{t}_knee_link", 1.0),
                       ("{s}_shin", "{s}_foot", "{t}_knee_link", "{t}_ankle_roll_link", 1.0),
                       ("{s}_upper_arm", "{s}_lower_arm", "{t}_shoulder_roll_link", "{t}_elbow_link", 1.0),
                       ("{s}_lower_arm", "{s}_hand", "{t}_elbow_link", "{t}_wrist_yaw_link", 1.0)),
                      _HUMANOID_SIDES),
    orientations=(("pelvis", "pelvis", 1.0), ("torso", "torso_link", 0.5),
                  ("left_foot", "left_ankle_roll_link", 1.0), ("right_foot", "right_ankle_roll_link", 1.0)),
    anchors=_sided((("{s}_thigh", "{t}_hip_roll_link", ("{t}_hip_roll_link", "{t}_knee_link", "{t}_ankle_roll_link")),
                    ("{s}_upper_arm", "{t}_shoulder_roll_link", ("{t}_shoulder_roll_link", "{t}_wrist_yaw_link"),
                     "torso")),
                   _HUMANOID_SIDES),
)

_PI_SIDES = (("left", "l"), ("right", "r"))

HUMANOID_TO_PI_PLUS = Mapping(
    positions=_sided((("{s}_thigh", "{t}_hip_roll_link", 1.0), ("{s}_shin", "{t}_calf_link", 0.5),
                      ("{s}_foot", "{t}_ankle_pitch_link", 3.0), ("{s}_upper_arm", "{t}_shoulder_roll_link", 0.3),
                      ("{s}_hand", "{t}_wrist_link", 0.2)), _PI_SIDES),
    feet=(("left_foot", "l_ankle_pitch_link"), ("right_foot", "r_ankle_pitch_link")),
    legs=(("left_thigh", "left_foot", "l_hip_roll_link", "l_ankle_pitch_link"),
          ("right_thigh", "right_foot", "r_hip_roll_link", "r_ankle_pitch_link")),
    directions=_sided((("{s}_thigh", "{s}_shin", "{t}_hip_roll_link", "{t}_calf_link", 1.0),
                       ("{s}_shin", "{s}_foot", "{t}_calf_link", "{t}_ankle_pitch_link", 1.0),
                       ("{s}_upper_arm", "{s}_lower_arm", "{t}_shoulder_roll_link", "{t}_elbow_link", 1.0),
                       ("{s}_lower_arm", "{s}_hand", "{t}_elbow_link", "{t}_wrist_link", 1.0)), _PI_SIDES),
    orientations=(("pelvis", "base_link", 1.0), ("left_foot", "l_ankle_roll_link", 1.0),
                  ("right_foot", "r_ankle_roll_link", 1.0)),
    anchors=_sided((("{s}_thigh", "{t}_hip_roll_link", ("{t}_hip_roll_link", "{t}_calf_link", "{t}_ankle_pitch_link")),
                    ("{s}_upper_arm", "{t}_shoulder_roll_link", ("{t}_shoulder_roll_link", "{t}_wrist_link"), "torso")),
                   _PI_SIDES),
)

_SMPL_SIDES = (("left", "L"), ("right", "R"))

HUMANOID_TO_SMPL = Mapping(
    positions=_sided((("{s}_thigh", "{t}_Hip", 1.0), ("{s}_shin", "{t}_Knee", 0.5), ("{s}_foot", "{t}_Ankle", 3.0),
                      ("{s}_upper_arm", "{t}_Shoulder", 0.3), ("{s}_hand", "{t}_Wrist", 0.2)), _SMPL_SIDES),
    feet=(("left_foot", "L_Ankle"), ("right_foot", "R_Ankle")),
    legs=(("left_thigh", "left_foot", "L_Hip", "L_Ankle"), ("right_thigh", "right_foot", "R_Hip", "R_Ankle")),
    directions=_sided((("{s}_thigh", "{s}_shin", "{t}_Hip", "{t}_Knee", 1.0),
                       ("{s}_shin", "{s}_foot", "{t}_Knee", "{t}_Ankle", 1.0),
                       ("{s}_upper_arm", "{s}_lower_arm", "{t}_Shoulder", "{t}_Elbow", 1.0),
                       ("{s}_lower_arm", "{s}_hand", "{t}_Elbow", "{t}_Wrist", 1.0)), _SMPL_SIDES),
    orientations=(("pelvis", "Pelvis", 1.0), ("torso", "Spine", 0.5), ("torso", "Chest", 0.5), ("head", "Head", 0.3),
                  ("left_foot", "L_Ankle", 1.0), ("right_foot", "R_Ankle", 1.0), ("left_lower_arm", "L_Elbow", 0.3),
                  ("right_lower_arm", "R_Elbow", 0.3)),
    anchors=_sided((("{s}_thigh", "{t}_Hip", ("{t}_Hip", "{t}_Knee", "{t}_Ankle")),
                    ("{s}_upper_arm", "{t}_Shoulder", ("{t}_Shoulder", "{t}_Wrist"), "torso")), _SMPL_SIDES),
)

MAPPINGS = {("humanoid", "g1"): HUMANOID_TO_G1, ("humanoid", "pi_plus"): HUMANOID_TO_PI_PLUS,
            ("humanoid", "smpl"): HUMANOID_TO_SMPL}


def body_index(layout: Layout, name: str, role: str) -> int:
    if name not in layout.body_names:
        raise InputError(f"{layout.name}: unknown {role} body '{name}'; bodies are {list(layout.body_names)}")
    return layout.body_names.index(name)
