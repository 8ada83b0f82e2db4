"""`amp-jax inspect` (amp_jax/motion_tools/clip_quality.py): every shipped clip within its limits, and clips broken on
purpose failing the matching check with a hand-computed number.

Contact: a foot's lowest collision point less than 2 cm above the floor and moving slower than 1 m/s
horizontally. Default limits (clip_quality.Limits, for locomotion): mean slip in contact <= 0.25 m/s and
contact in >= 30% of the frames per foot, scuffing (near the floor but faster) in <= 20% of the frames,
penetration <= 1 cm, median lowest point <= 2 cm (no floating), no DoF beyond its range (1e-4 rad), root
speed <= 6 m/s. Besides, the heading must turn the way a clip's name says (turn_left: +20..+120 degrees,
turn_right: the opposite, a mirror the other way round, others within 15 degrees; the spinkick a full turn)
and walks must move at 0.3-1.5 m/s, runs at 2.5-5 m/s.

Known exceptions, allowed here and listed in docs/motions.md:
* humanoid_spinkick: as in the DeepMimic source, left_ankle_x goes 0.27 rad beyond its range, right_knee
  hyperextends by 0.22 rad and right_hip_x by 0.04 rad; the feet sink up to 2.4 cm (3 cm allowed).
"""

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from amp_jax.cli import main
from amp_jax.motion.clip import Clip, clip_to_frames, load_clip
from amp_jax.motion_tools import clip_quality as cq
from amp_jax.motion_tools import host_kinematics as hk

REPO = Path(__file__).resolve().parent.parent
CLIPS = sorted((REPO / "motions").glob("**/*.npz"))
SPINKICK = cq.Limits(penetration_m=0.03, joint_excess_rad=(("left_ankle_x", 0.28), ("right_knee", 0.23),
                                                           ("right_hip_x", 0.04)))
EXCEPTIONS = {"humanoid_spinkick": SPINKICK}


def test_every_clip_is_checked():
    assert len(CLIPS) == 33
    assert set(EXCEPTIONS) <= {p.stem for p in CLIPS}


@pytest.mark.parametrize("path", CLIPS, ids=[p.stem for p in CLIPS])
def test_shipped_clip_within_limits(path):
    report = cq.inspect_file(path)
    name = path.stem
    assert cq.check(report, EXCEPTIONS.get(name, cq.Limits())) == [], cq.format_report(report)
    yaw, speed = report["root"]["heading_change_deg"], report["root"]["speed_mean_m_s"]
    sign = -1 if name.endswith("_mirror") else 1
    if "turn_left" in name:
        assert 20 < sign * yaw < 120
    elif "turn_right" in name:
        assert 20 < -sign * yaw < 120
    elif "spinkick" in name:
        assert yaw > 300
    else:
        assert abs(yaw) < 15
    if "_run" in name:
        assert 2.5 < speed < 5
    elif "walk" in name or "pace" in name:
        assert 0.3 < speed < 1.5


# ------------------------------------------------------------------------------------------------------
# Clips broken on purpose: the humanoid standing in its zero pose, feet flat on the floor, for 1 s at 30 Hz.

N, FPS = 30, 30.0


@pytest.fixture(scope="module")
def standing(humanoid):
    layout, model = humanoid.layout, humanoid.mj_model
    bp, br = hk.fk(layout, np.zeros(3), [1.0, 0.0, 0.0, 0.0], np.zeros(layout.num_dof))
    everything = hk.subtree_geoms(model, layout, [layout.body_names[0]])
    height = -float(hk.geom_bottoms(everything, bp, br).min())
    clip = Clip(fps=FPS, loop=False, root_pos=np.tile(np.float32([0.0, 0.0, height]), (N, 1)),
                root_rot=np.tile(np.float32([1, 0, 0, 0]), (N, 1)), dof_pos=np.zeros((N, layout.num_dof), np.float32),
                character="humanoid")
    return clip, layout, model


def _report(standing, **changes):
    clip, layout, model = standing
    return cq.inspect_clip(Clip(**{**clip.__dict__, **changes}), layout, model, ("right_foot", "left_foot"))


def _shifted(clip, offset):
    return clip.root_pos + np.float32(offset)


def test_standing_clip_is_clean(standing):
    r = _report(standing)
    assert cq.check(r) == []
    for foot in r["feet"].values():
        assert foot["contact_fraction"] == 1.0 and foot["slip_max_m_s"] < 1e-6 and foot["scuff_fraction"] == 0.0
    assert r["ground"]["penetration_m"] < 1e-6 and r["joint_limits"]["frames"] == 0
    assert r["root"] == {"speed_mean_m_s": 0.0, "speed_max_m_s": 0.0, "heading_change_deg": 0.0}


def test_sunk_feet_fail_penetration(standing):
    clip = standing[0]
    r = _report(standing, root_pos=_shifted(clip, [0.0, 0.0, -0.10]))
    assert r["ground"]["penetration_m"] == pytest.approx(0.10, abs=1e-6)
    assert r["ground"]["frames_below_floor"] == N
    assert [p.split(":")[0] for p in cq.check(r)] == ["ground penetration"]


def test_floating_clip_fails_the_float_and_contact_checks(standing):
    clip = standing[0]
    r = _report(standing, root_pos=_shifted(clip, [0.0, 0.0, 0.05]))
    assert r["ground"]["lowest_median_m"] == pytest.approx(0.05, abs=1e-6)
    assert {p.split(":")[0] for p in cq.check(r)} == {"floating", "foot contact"}


def test_joint_pushed_out_of_range(standing):
    clip, layout, _ = standing
    d = layout.dof_names.index("right_elbow")
    dof = clip.dof_pos.copy()
    dof[10:15, d] = layout.dof_high[d] + 0.3
    r = _report(standing, dof_pos=dof)
    assert r["joint_limits"]["frames"] == 5
    assert r["joint_limits"]["max_excess_rad"] == pytest.approx(0.3, abs=1e-6)
    assert [(e["dof"], e["frames"]) for e in r["joint_limits"]["dofs"]] == [("right_elbow", 5)]
    assert [p.split(":")[0] for p in cq.check(r)] == ["joint limit"]
    # Allowed for that DoF up to 0.31 rad: passes.
    assert cq.check(r, cq.Limits(joint_excess_rad=(("right_elbow", 0.31),))) == []
    np.testing.assert_allclose(cq.joint_range_excess([[-2.0, 0.5, 3.0]], [-1.0, 0.0, 0.0], [1.0, 1.0, 2.5]),
                               [[1.0, 0.0, 0.5]])


def test_dragged_feet_slip_at_the_drag_speed(standing):
    clip = standing[0]
    t = np.arange(N, dtype=np.float32)[:, None] / FPS
    r = _report(standing, root_pos=clip.root_pos + t * np.float32([0.5, 0.0, 0.0]))
    for foot in r["feet"].values():  # every point of a foot moves at 0.5 m/s, in contact all the time
        assert foot["contact_fraction"] == 1.0
        assert foot["slip_mean_m_s"] == pytest.approx(0.5, abs=1e-4)
    assert r["root"]["speed_mean_m_s"] == pytest.approx(0.5, abs=1e-4)
    assert [p.split(":")[0] for p in cq.check(r)] == ["foot slip", "foot slip"]
    # Dragged faster than a foot in contact can move: no contact, all scuffing.
    r = _report(standing, root_pos=clip.root_pos + t * np.float32([1.5, 0.0, 0.0]))
    assert all(f["contact_fraction"] == 0.0 and f["scuff_fraction"] == 1.0 for f in r["feet"].values())
    assert {p.split(":")[0] for p in cq.check(r)} == {"foot contact", "foot scuff"}


def test_heading_change_is_the_total_yaw(standing):
    yaw = np.linspace(0.0, np.pi / 2, N)  # a quarter turn about +z
    rot = np.stack([np.cos(yaw / 2), 0 * yaw, 0 * yaw, np.sin(yaw / 2)], axis=1).astype(np.float32)
    r = _report(standing, root_rot=rot)
    assert r["root"]["heading_change_deg"] == pytest.approx(90.0, abs=1e-3)


# ------------------------------------------------------------------------------------------------------
# The command


def test_inspect_command(tmp_path, capsys):
    out = tmp_path / "report.json"
    assert main(["inspect", str(REPO / "motions/g1/g1_walk.npz"), "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["character"] == "g1" and report["problems"] == [] and report["config"].endswith("amp_g1.yaml")
    assert "limits: ok" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        main(["inspect", str(REPO / "motions/humanoid/humanoid_spinkick.npz"), "--strict"])
    assert e.value.code == 1


def test_inspect_needs_a_character(tmp_path, capsys):
    walk = load_clip(REPO / "motions/humanoid/humanoid_walk.npz")
    pkl = tmp_path / "walk.pkl"
    pkl.write_bytes(pickle.dumps({"loop_mode": 1, "fps": walk.fps, "frames": clip_to_frames(walk)}))
    assert main(["inspect", str(pkl)]) == 2
    assert "names no character; pass --config" in capsys.readouterr().err
    assert main(["inspect", str(pkl), "--config", "amp_humanoid"]) == 0
    assert main(["inspect", str(pkl), "--config", "amp_g1"]) == 2
    assert "29" in capsys.readouterr().err  # the width error names the character's DoF count


# ------------------------------------------------------------------------------------------------------
# Videos (scripts/make_clip_videos.py)


def test_every_clip_has_a_video_in_the_docs():
    table = (REPO / "docs/motions.md").read_text()
    total = 0
    for path in CLIPS:
        gif = REPO / "docs/clips" / f"{path.stem}.gif"
        assert gif.is_file() and f"![{path.stem}](clips/{path.stem}.gif)" in table
        total += gif.stat().st_size
    assert total < 5 * 2**20


def test_camera_scale_frames_a_small_character(standing):
    """Half the camera distance and look-at height: the standing humanoid covers about 4x the pixels."""
    from amp_jax.render import frames as render

    clip, layout, model = standing
    qpos = model.qpos0[None].copy()
    qpos[0, :3] = clip.root_pos[0]
    assert model.geom_bodyid[0] == 0  # geom 0 is the floor
    floor_only = model.geom_rgba.copy()
    sizes = []
    for scale in (1.0, 0.5):
        frames = render.render_qpos(model, qpos, 160, 120, camera_scale=scale).astype(int)
        model.geom_rgba[1:, 3] = 0.0  # hide the character: what is left is the background
        empty = render.render_qpos(model, qpos, 160, 120, camera_scale=scale).astype(int)
        model.geom_rgba[:] = floor_only
        sizes.append(int((np.abs(frames - empty).sum(axis=-1) > 30).sum()))
    assert 3.0 < sizes[1] / sizes[0] < 5.0, sizes
