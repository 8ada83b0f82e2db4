"""Build motions/humanoid/ from DeepMimic's clips in the pybullet wheel: the spinkick, the walk and run, the five
walker clips (walk forward and four turns), the mirror images of the locomotion clips, and the locomotion dataset
motions/humanoid/dataset_humanoid_locomotion.yaml.

    PYTHONPATH=. python scripts/make_motions.py [--wheel PATH] [--out motions/humanoid]

Without --wheel it downloads pybullet 3.2.7 (about 103 MB, zlib licence) into ~/.cache/amp-jax once. The
clips are read straight from the wheel; attribution is in motions/LICENSES.md.

For every clip it prints the frame count and rate, the heading change and horizontal distance from the first
to the last frame, the lowest foot-box corner over the clip and the DoFs that leave their authored range (kept,
not clipped). A locomotion clip whose lowest foot corner is below FLOOR_TOLERANCE is raised as a whole (one
constant root-height offset) so that its lowest foot corner is at 0; the offsets used are printed. The run is
grounded per frame instead (`ground_stance`): its source puts the landing foot up to 6.75 cm into the floor
but the rest of the stance only 1-2 cm, so no constant offset grounds it. The spinkick is converted unchanged
(its feet go 2.4 cm into the floor, about 1.3 cm throughout its stance phases), so that the committed clip,
which the training defaults and tests use, stays the same.
"""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys
import zipfile
from pathlib import Path

import jax.numpy as jnp
import mujoco
import numpy as np
from scipy.spatial.transform import Rotation

from amp_jax.characters.character import load_character
from amp_jax.characters.kinematics import dof_to_joint_rot, to_qpos
from amp_jax.motion.clip import save_clip
from amp_jax.motion_tools import host_kinematics as hk
from amp_jax.motion_tools.importers.deepmimic import deepmimic_to_humanoid, parse_deepmimic
from amp_jax.motion_tools.mirror import mirror_clip

ROOT = Path(__file__).resolve().parent.parent
PYBULLET = "pybullet==3.2.7"
FLOOR_TOLERANCE = -0.01  # metres: a locomotion clip whose feet go deeper than this is raised to 0
FEET = ("right_foot", "left_foot")
PLANTED_SPEED = 1.5  # m/s: a foot whose lowest point moves slower than this (3-D) is the stance foot


@dataclasses.dataclass(frozen=True)
class Source:
    member: str  # path inside the wheel, under pybullet_data/data/motions/
    name: str  # output file stem under --out
    locomotion: bool  # mirrored, floor-checked and listed in the locomotion dataset
    weight: float = 0.0  # dataset weight of the clip and of its mirror
    grounded: bool = False  # grounded per frame by ground_stance instead of one constant offset


CLIPS = (
    Source("humanoid3d_spinkick.txt", "humanoid_spinkick", locomotion=False),
    Source("humanoid3d_walk.txt", "humanoid_walk", locomotion=True, weight=3.0),
    Source("humanoid3d_run.txt", "humanoid_run", locomotion=True, weight=3.0, grounded=True),
    Source("walker/0walk_forward.txt", "humanoid_walker_forward", locomotion=True, weight=1.0),
    Source("walker/turn_left0.txt", "humanoid_walker_turn_left0", locomotion=True, weight=1.0),
    Source("walker/turn_left1.txt", "humanoid_walker_turn_left1", locomotion=True, weight=1.0),
    Source("walker/turn_right0.txt", "humanoid_walker_turn_right0", locomotion=True, weight=1.0),
    Source("walker/turn_right1.txt", "humanoid_walker_turn_right1", locomotion=True, weight=1.0),
)
DATASET = "dataset_humanoid_locomotion.yaml"
DATASET_HEADER = """\
# amp-jax humanoid locomotion dataset, written by scripts/make_motions.py (sources: motions/LICENSES.md).
#
# MimicKit's dataset_humanoid_locomotion.yaml mixes walk and run (weight 3 each), long walks and their mirrors
# (weight 3 each) and 46 Sony run captures (weight 1 each); the captures are non-commercial, so ours is built
# from the permissively licensed DeepMimic clips only: walk, run, the five walker clips (walk forward and four
# turns) and the mirror image of each (left and right swapped, lateral axis negated).
#
# Weights follow MimicKit's rule: the main walk and run clips 3, every other clip 1, and a mirror the weight of
# its original. Walk and run with their mirrors thus get 12/22 of the samples, the walker clips 10/22. A clip is
# drawn by weight regardless of its length (walk 1.27 s, run 0.80 s, walker clips 1.23 s).
"""


def download_wheel(cache: Path) -> Path:
    """The pybullet wheel in `cache`, downloaded with pip if it is not there yet."""
    found = sorted(cache.glob("pybullet-3.2.7-*.whl"))
    if not found:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", PYBULLET,
                        "-d", str(cache)], check=True)
        found = sorted(cache.glob("pybullet-3.2.7-*.whl"))
    if not found:
        sys.exit(f"pip left no pybullet 3.2.7 wheel in {cache}")
    return found[0]


def range_excess(clip, layout) -> list[str]:
    """The DoFs that leave their authored range by more than 0.05 rad (they are kept, not clipped)."""
    over = np.maximum(clip.dof_pos - layout.dof_high, layout.dof_low - clip.dof_pos).max(axis=0)
    return [f"{layout.dof_names[i]} leaves [{layout.dof_low[i]:.3f}, {layout.dof_high[i]:.3f}] by up to "
            f"{over[i]:.3f} rad" for i in np.flatnonzero(over > 0.05)]


def lowest_foot(clip, character) -> float:
    """The lowest world z of any corner of the foot boxes over the clip (MuJoCo forward kinematics)."""
    model, layout = character.mj_model, character.layout
    qpos = np.asarray(to_qpos(layout, jnp.asarray(clip.root_pos), jnp.asarray(clip.root_rot),
                              dof_to_joint_rot(layout, jnp.asarray(clip.dof_pos))), np.float64)
    geoms = [g for g in range(model.ngeom) if model.body(int(model.geom_bodyid[g])).name in FEET]
    signs = np.array(np.meshgrid([-1, 1], [-1, 1], [-1, 1])).reshape(3, -1).T
    data = mujoco.MjData(model)
    lowest = np.inf
    for q in qpos:
        data.qpos[:] = q
        mujoco.mj_kinematics(model, data)
        for g in geoms:
            corners = data.geom_xpos[g] + (signs * model.geom_size[g]) @ data.geom_xmat[g].reshape(3, 3).T
            lowest = min(lowest, float(corners[:, 2].min()))
    return lowest


def _stance(clip, character):
    """Per frame: the stance foot's lowest point height [N], whether a foot is planted [N], which foot [N],
    and how far the stance foot's lowest point (fixed in its body at frame t) moves from t to t + 1 [N, 3].
    A foot is planted when that point moves slower than PLANTED_SPEED (central differences)."""
    layout = character.layout
    body_pos, body_rot = hk.fk(layout, clip.root_pos, clip.root_rot, clip.dof_pos)
    geoms = hk.subtree_geoms(character.mj_model, layout, FEET)
    z = hk.geom_bottoms(geoms, body_pos, body_rot)
    _, local = hk.lowest_points(geoms, body_pos, body_rot)
    n = clip.num_frames
    t = np.arange(n)
    nxt, prv = np.minimum(t + 1, n - 1), np.maximum(t - 1, 0)
    height, speed, step = [], [], []
    for f in range(len(FEET)):
        own = np.flatnonzero(geoms.group == f)
        g = own[np.argmin(z[:, own], axis=1)]  # the foot's lowest geom at each frame
        body, point = geoms.body[g], local[t, g]

        def at(frames):
            return body_pos[frames, body] + hk.quat_rotate(body_rot[frames, body], point)

        height.append(z[t, g])
        speed.append(np.linalg.norm(at(nxt) - at(prv), axis=-1) * clip.fps / np.maximum(nxt - prv, 1))
        step.append(at(nxt) - at(t))
    height, speed, step = np.array(height).T, np.array(speed).T, np.array(step).transpose(1, 0, 2)
    planted = speed < PLANTED_SPEED
    foot = np.argmin(np.where(planted, height, np.inf), axis=1)
    return height[t, foot], planted.any(axis=1), foot, step[t, foot]


def ground_stance(clip, character):
    """The clip with its root moved per frame so that the stance foot stands on the floor and does not slide.

    Height: at a frame with a planted foot the root is moved by minus the stance foot's lowest point; across
    the frames without one (flight) the correction is interpolated (around the seam of a looping clip), then
    smoothed twice with [1/4, 1/2, 1/4], never lowering a planted foot below the floor. Sliding: between two
    frames planted on the same foot the root's horizontal step is reduced by the stance point's, so that
    point stays put (the source's stance foot slides 0.3 m/s on average)."""
    height, planted, foot, step = _stance(clip, character)
    n = clip.num_frames
    t = np.arange(n)
    lift = np.interp(t, t[planted], -height[planted], period=n if clip.loop else None)
    for _ in range(2):
        padded = np.pad(lift, 1, mode="wrap" if clip.loop else "edge")
        lift = 0.25 * padded[:-2] + 0.5 * padded[1:-1] + 0.25 * padded[2:]
    lift = np.where(planted, np.maximum(lift, -height), lift)
    same_foot = planted[:-1] & planted[1:] & (foot[:-1] == foot[1:])
    root = clip.root_pos.astype(np.float64)
    xy_steps = np.diff(root[:, :2], axis=0) - np.where(same_foot[:, None], step[:-1, :2], 0.0)
    xy = root[0, :2] + np.concatenate([np.zeros((1, 2)), np.cumsum(xy_steps, axis=0)])
    root_pos = np.concatenate([xy, root[:, 2:] + lift[:, None]], axis=1)
    return dataclasses.replace(clip, root_pos=root_pos.astype(np.float32))


def heading_change(clip) -> float:
    """Degrees the root's forward (+x) axis turns about z from the first to the last frame (left positive)."""
    q = clip.root_rot.astype(np.float64)
    forward = Rotation.from_quat(q[:, [1, 2, 3, 0]]).apply([1.0, 0.0, 0.0])
    yaw = np.unwrap(np.arctan2(forward[:, 1], forward[:, 0]))
    return float(np.degrees(yaw[-1] - yaw[0]))


def describe(path: Path, clip, character, offset: float | None = None) -> None:
    distance = float(np.linalg.norm(clip.root_pos[-1, :2] - clip.root_pos[0, :2]))
    text = (f"{path}: {clip.num_frames} frames at {clip.fps:.4f} fps ({clip.length:.2f} s), loop={clip.loop}, "
            f"heading {heading_change(clip):+.1f} deg, distance {distance:.2f} m, "
            f"lowest foot {100 * lowest_foot(clip, character):+.2f} cm")
    if offset is not None:
        text += f", raised {100 * offset:.2f} cm" if offset else ", no height offset"
    print(text)
    for line in range_excess(clip, character.layout):
        print(f"  {line}")


def write_dataset(path: Path, entries: list[tuple[str, float]]) -> None:
    lines = [DATASET_HEADER, "motions:"]
    lines += [f"  - {{file: {name}.npz, weight: {weight:g}}}" for name, weight in entries]
    path.write_text("\n".join(lines) + "\n")
    print(f"{path}: {len(entries)} clips, weights sum to {sum(w for _, w in entries):g}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wheel", type=Path, help="pybullet 3.2.7 wheel (default: download into ~/.cache/amp-jax)")
    parser.add_argument("--out", type=Path, default=ROOT / "motions" / "humanoid")
    args = parser.parse_args()

    wheel = args.wheel or download_wheel(Path.home() / ".cache" / "amp-jax")
    character = load_character(ROOT / "assets" / "humanoid" / "humanoid.xml")
    layout = character.layout
    args.out.mkdir(parents=True, exist_ok=True)
    dataset = []
    with zipfile.ZipFile(wheel) as zf:
        for src in CLIPS:
            member = f"pybullet_data/data/motions/{src.member}"
            motion = parse_deepmimic(zf.read(member).decode(), f"{wheel.name}:{member}")
            clip = deepmimic_to_humanoid(motion, layout)
            path = args.out / f"{src.name}.npz"
            if not src.locomotion:
                save_clip(path, clip)
                describe(path, clip, character)
                continue
            lowest = lowest_foot(clip, character)
            offset = -lowest if lowest < FLOOR_TOLERANCE and not src.grounded else 0.0
            if src.grounded:
                clip = ground_stance(clip, character)
            elif offset:
                root_pos = clip.root_pos.astype(np.float64) + np.array([0.0, 0.0, offset])
                clip = dataclasses.replace(clip, root_pos=root_pos.astype(np.float32))
            save_clip(path, clip)
            describe(path, clip, character, None if src.grounded else offset)
            if src.grounded:
                print("  grounded per frame (ground_stance)")
            mirror = mirror_clip(clip, layout)
            mirror_path = args.out / f"{src.name}_mirror.npz"
            save_clip(mirror_path, mirror)
            describe(mirror_path, mirror, character)
            dataset += [(src.name, src.weight), (f"{src.name}_mirror", src.weight)]
    write_dataset(args.out / DATASET, dataset)


if __name__ == "__main__":
    main()
