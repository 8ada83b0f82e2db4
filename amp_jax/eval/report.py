"""The `amp-jax eval` report: whether a policy learned its motion, as JSON and a short Markdown summary.

From deterministic rollouts (amp_jax.eval.evaluate): episode length, fall rate and style reward; the
motion-matching score (amp_jax.eval.motion_matching: "stays on the data" and "covers the data"); the
root's horizontal speed against the clips'; for a spinkick case, whether the kick happens; the task measures
of task cases.

The kick. The kicking foot is the contact body that rises highest in the clip. In each episode, after
its first clip length (so that a kick inherited from the reference-state reset does not count), we take
the foot's peak height and the spin, the largest range of the root's unwrapped heading within any
clip length of frames. The clip's own values are the same measures over the clip (sampled at the control
rate). The kick happens in an episode when both reach KICK_FRACTION of the clip's.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import jax.numpy as jnp
import numpy as np

from amp_jax import quat
from amp_jax.characters import kinematics
from amp_jax.envs.amp_env import AmpEnv
from amp_jax.errors import InputError
from amp_jax.eval import evaluate, motion_matching, sim_to_sim, style_tells
from amp_jax.learning.learner import Learner
from amp_jax.learning.train_step import TrainState

KICK_FRACTION = 0.75

# The bars a trained case must reach (issue "Trained and shown"; README, "The cases").
BAR_FALL_RATE = 0.05  # at most this fraction of 10 s episodes end in a fall
BAR_STAY_STEPS = 2.0  # "stays on the data" within this many of the clips' own frame-to-frame distances
BAR_COVER = 0.8  # "covers the data" at least this
BAR_CLIP_TOLERANCE = 0.2  # the kick's height and spin, a walk's or pace's speed: within this fraction of the clip's
BAR_TRAVELLING_CLIP = 0.25  # m/s: the speed of style-only clips that travel at least this fast is judged
BAR_LOCATION_SUCCESS = 0.9
BAR_STEERING_VELOCITY_ERROR = 0.3  # m/s


def spin_kick_measures(foot_height, heading, window: int) -> tuple[float, float]:
    """Peak foot height and spin (the largest max - min of the unwrapped heading within any `window`
    consecutive frames) of one frame sequence: foot_height [n], heading [n] (radians)."""
    h = np.unwrap(np.asarray(heading, np.float64))
    windows = np.lib.stride_tricks.sliding_window_view(h, min(window, len(h)))
    return float(np.max(foot_height)), float(np.max(windows.max(axis=1) - windows.min(axis=1)))


def is_spinkick(env: AmpEnv) -> bool:
    """Whether the environment imitates a spinkick clip (the kick is reported for those)."""
    return "spinkick" in Path(env.cfg.motion_file).stem


def _heights_and_heading(layout, root_pos, root_rot, joint_rot):
    """World heights [..., C] of the contact bodies and the root heading [...]."""
    body_pos, _ = kinematics.forward_kinematics(layout, root_pos, root_rot, joint_rot)
    return np.asarray(body_pos[..., layout.contact_body_ids, 2]), np.asarray(quat.heading(root_rot))


def kick_report(env: AmpEnv, r: evaluate.EvalRollouts) -> dict:
    """The kicking foot, the clip's peak height and spin, and the policy's (see the module docstring)."""
    layout = env.layout
    states, clip_ids = motion_matching.reference_states(env.motions, env.control_dt)
    clip_heights, clip_heading = _heights_and_heading(layout, states.root_pos, states.root_rot, states.joint_rot)
    clip_heights, clip_heading = clip_heights[clip_ids == 0], clip_heading[clip_ids == 0]
    foot = int(np.argmax(clip_heights.max(axis=0)))
    window = len(clip_heading)
    clip_peak, clip_spin = spin_kick_measures(clip_heights[:, foot], clip_heading, window)

    heights, heading = _heights_and_heading(layout, *kinematics.qpos_frame(layout, jnp.asarray(r.qpos)))
    peaks, spins, kicked = [], [], []
    for e, first, last in r.episodes:
        start = first + window
        if start > last:  # shorter than a clip length: no kick of its own
            kicked.append(False)
            continue
        peak, spin = spin_kick_measures(heights[start:last + 1, e, foot], heading[start:last + 1, e], window)
        peaks.append(peak)
        spins.append(spin)
        kicked.append(peak >= KICK_FRACTION * clip_peak and spin >= KICK_FRACTION * clip_spin)
    return {
        "foot": layout.body_names[layout.contact_body_ids[foot]],
        "clip_peak_height": clip_peak,
        "clip_spin": clip_spin,
        "peak_height_mean": float(np.mean(peaks)) if peaks else None,
        "spin_mean": float(np.mean(spins)) if spins else None,
        "kick_rate": float(np.mean(kicked)),
        "kick_fraction": KICK_FRACTION,
    }


def eval_report(learner: Learner, env: AmpEnv, state: TrainState, num_episodes: int, num_envs: int,
                seed: int = 0, engine: str = "mjx") -> dict:
    """Deterministic rollouts of ceil(num_episodes / num_envs) episodes per environment, measured; engine
    mjx runs them in the training simulation, mujoco in MuJoCo itself (amp_jax.eval.sim_to_sim)."""
    if engine == "mjx":
        r = evaluate.run_test_rollouts(learner, env, state, num_episodes, num_envs, seed, tells=True)
        physics = sim_to_sim.physics_settings(env.character.mj_model, f"mjx ({env.cfg.physics.impl})")
    elif engine == "mujoco":
        r = sim_to_sim.run_mujoco_rollouts(learner, env, state, num_episodes, num_envs, seed)
        physics = sim_to_sim.physics_settings(sim_to_sim.reference_model(env.character), "mujoco")
    else:
        raise InputError(f"eval: engine must be mjx or mujoco, got {engine!r}")
    stats = evaluate.rollout_stats(r, env.control_dt)
    reference = motion_matching.library_reference(env.layout, env.motions, env.control_dt)
    policy_features = evaluate.episode_features(env.layout, r)
    task = None
    if env.cfg.task != "none":
        task = {k: v for k, v in stats.items() if k == "mean_return" or k.startswith(("location_", "mean_steering_"))}
    mm = motion_matching.matching_scores(reference, policy_features)
    frame_step = motion_matching.control_step_distance(env.layout, env.motions, env.control_dt, reference)
    kick = kick_report(env, r) if is_spinkick(env) else None
    speed = {"policy": stats["mean_root_speed"], "reference": evaluate.clip_root_speed(env.motions, env.control_dt)}
    tells = None if r.tells is None else style_tells.summary(r.tells, r.style, r.episodes, env.disc_feature_columns)
    return {
        "bar": bar_report(stats, mm, frame_step, kick, speed if kick is None and task is None else None),
        "episodes": stats["episodes"],
        "num_envs": num_envs,
        "seed": seed,
        "physics": physics,
        "mean_episode_length": stats["mean_episode_length"],
        "episode_steps": env.episode_steps,
        "fall_rate": stats["fall_rate"],
        "mean_style_reward": stats["mean_style_reward"],
        "root_speed": speed,
        "motion_matching": {
            **mm,
            "clip_frame_step": frame_step,
            "near": motion_matching.NEAR,
            "policy_frames": len(policy_features),
            "reference_frames": len(reference.features),
            "spread": reference.spread,
        },
        "kick": kick,
        "task": task,
        "style_tells": tells,
    }


def _within(value, target: float, tolerance: float) -> bool:
    return value is not None and abs(value - target) <= tolerance * abs(target)


def bar_report(stats: dict, mm: dict, frame_step: float, kick: dict | None, speed: dict | None = None) -> dict:
    """Each bar of the case (name -> value, limit, passed) and whether all are passed. speed (the root's,
    policy and reference; given for style-only cases but the spinkick) is judged where the clips travel (the
    walks and the pace): standing or marking time on the spot in the clips' poses would otherwise pass "stays
    on the data" and "covers the data"."""
    bars = {
        "fall_rate": (stats["fall_rate"], f"<= {BAR_FALL_RATE}", stats["fall_rate"] <= BAR_FALL_RATE),
        "mm_stay": (mm["stay"], f"<= {BAR_STAY_STEPS * frame_step:.3f} ({BAR_STAY_STEPS:g} clip frame steps)",
                    mm["stay"] <= BAR_STAY_STEPS * frame_step),
        "mm_cover": (mm["cover"], f">= {BAR_COVER}", mm["cover"] >= BAR_COVER),
    }
    if kick is not None:
        for name, clip in (("peak_height_mean", "clip_peak_height"), ("spin_mean", "clip_spin")):
            bars[f"kick_{name}"] = (kick[name], f"{kick[clip]:.3f} +- {BAR_CLIP_TOLERANCE:.0%}",
                                    _within(kick[name], kick[clip], BAR_CLIP_TOLERANCE))
    if speed is not None and speed["reference"] >= BAR_TRAVELLING_CLIP:
        bars["root_speed"] = (speed["policy"], f"{speed['reference']:.3f} m/s +- {BAR_CLIP_TOLERANCE:.0%}",
                              _within(speed["policy"], speed["reference"], BAR_CLIP_TOLERANCE))
    if "location_success_rate" in stats:
        v = stats["location_success_rate"]
        bars["location_success_rate"] = (v, f">= {BAR_LOCATION_SUCCESS}", v >= BAR_LOCATION_SUCCESS)
    if "mean_steering_velocity_error" in stats:
        v = stats["mean_steering_velocity_error"]
        bars["steering_velocity_error"] = (v, f"<= {BAR_STEERING_VELOCITY_ERROR} m/s", v <= BAR_STEERING_VELOCITY_ERROR)
    measures = {k: {"value": v, "limit": limit, "passed": bool(ok)} for k, (v, limit, ok) in bars.items()}
    return {"passed": all(m["passed"] for m in measures.values()), "measures": measures}


def finite_or_none(x):
    """x (nested dicts and lists) with its non-finite floats as None, for JSON."""
    if isinstance(x, dict):
        return {k: finite_or_none(v) for k, v in x.items()}
    if isinstance(x, list):
        return [finite_or_none(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def format_value(x, spec: str = ".3f") -> str:
    """x formatted by spec, or "n/a" for None."""
    return "n/a" if x is None else format(x, spec)


def markdown_summary(report: dict) -> str:
    """A short Markdown summary of a report (eval_report's, with run_dir, case and iteration added)."""
    mm, kick, task, physics = report["motion_matching"], report["kick"], report["task"], report["physics"]
    speed = report["root_speed"]
    fraction = report["mean_episode_length"] / report["episode_steps"]
    lines = [
        f"# Evaluation of {report['run_dir']} ({report['case']}, iteration {report['iteration']}"
        + (f", {report['samples']:,.0f} samples)" if report.get("samples") is not None else ")"),
        "",
        f"{report['episodes']} deterministic episodes on {report['num_envs']} environments (seed {report['seed']}) "
        f"in {physics['engine']}: {physics['solver']} solver, {physics['iterations']} iterations "
        f"({physics['ls_iterations']} line search), contacts: {physics['contacts']}.",
        "",
        "| measure | value |",
        "|---|---|",
        f"| mean episode length | {report['mean_episode_length']:.1f} steps ({100 * fraction:.0f}% of the episode limit) |",
        f"| fall rate | {report['fall_rate']:.3f} |",
        f"| mean style reward | {report['mean_style_reward']:.4f} |",
        f"| horizontal root speed (the clips') | {format_value(speed['policy'], '.3f')} m/s "
        f"({format_value(speed['reference'], '.3f')} m/s) |",
        f"| stays on the data: mean distance to the nearest reference pose (0 best, ~1.4 unrelated) | {mm['stay']:.3f} |",
        f"| covers the data: reference poses within {mm['near']} of a policy pose | {mm['cover']:.3f} |",
    ]
    if kick is not None:
        lines += [
            f"| kick: {kick['foot']} peak height (clip) | {format_value(kick['peak_height_mean'], '.2f')} m "
            f"({kick['clip_peak_height']:.2f} m) |",
            f"| kick: spin within a clip length (clip) | {format_value(kick['spin_mean'], '.2f')} rad ({kick['clip_spin']:.2f} rad) |",
            f"| kick happens (both at {kick['kick_fraction']:.0%} of the clip's) | {kick['kick_rate']:.0%} of episodes |",
        ]
    for k, v in (task or {}).items():
        lines.append(f"| {k.replace('_', ' ')} | {format_value(v, '.3f')} |")
    bar = report["bar"]
    tells = report.get("style_tells")
    if tells is not None:
        told = ", ".join(f"{k.replace('_', ' ')} {format_value(v, '.2f')}"
                         for k, v in sorted(tells["data_with_policy"].items(), key=lambda kv: kv[1] or 0.0))
        lines += ["", f"What gives the policy away: the discriminator pays the data "
                  f"{format_value(tells['data'], '.2f')} (the policy {format_value(tells['policy'], '.2f')}), and the "
                  f"data with one feature from the policy: {told}."]
    lines += ["", f"Bar: {'reached' if bar['passed'] else 'not reached'}.", "", "| bar | value | limit | passed |",
              "|---|---|---|---|"]
    lines += [f"| {k} | {format_value(m['value'])} | {m['limit']} | {'yes' if m['passed'] else 'no'} |"
              for k, m in bar["measures"].items()]
    return "\n".join(lines) + "\n"


def write_report(report: dict, path: str | Path) -> tuple[Path, str]:
    """Write the report as JSON (non-finite numbers as null) to path and its Markdown summary beside
    it (the same name ending in .md); returns the summary's path and text."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    report = finite_or_none(report)
    path.write_text(json.dumps(report, indent=2) + "\n")
    summary = markdown_summary(report)
    md = path.with_suffix(".md")
    md.write_text(summary)
    return md, summary
