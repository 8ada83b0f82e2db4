"""Build the retargeted reference clips with amp_jax.motion_tools.retarget:

* motions/g1/g1_walk.npz, motions/pi_plus/pi_plus_walk.npz, motions/smpl/smpl_walk.npz from our humanoid's
  motions/humanoid/humanoid_walk.npz (DeepMimic walk, see motions/LICENSES.md);
* motions/go2/go2_pace.npz from the Laikago clip dog_pace.txt of the motion-imitation 0.0.6 sdist on PyPI
  (Apache-2.0).

    PYTHONPATH=. python scripts/make_retargeted_motions.py [--sdist PATH | --dog-pace TXT] [--only g1,go2]
        [--out motions]

Without --sdist or --dog-pace it runs `pip download --no-deps motion-imitation==0.0.6 -d ~/.cache/amp-jax` once
(10 MB) and reads motion_imitation/data/motions/dog_pace.txt straight from the tar.gz
(motions/go2/laikago_dog_pace.txt is an unaltered copy of that file, kept so the tests need no download;
--dog-pace reads it instead). The output is deterministic (fixed optimiser steps on the CPU). For every clip it
prints the quality numbers of the retargeting: mean / max key-point error against the scaled source, the largest
joint-range excess before clipping, the largest foot slide during source contact frames, the highest lowest-foot
point during contact, and the lift applied so that the lowest foot point over the clip is at z = 0.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from amp_jax.motion.clip import load_clip, save_clip
from amp_jax.motion_tools.retarget import (
    MAPPINGS,
    load_target,
    parse_laikago_motion,
    read_motion_imitation_clip,
    retarget,
    retarget_quadruped,
)

ROOT = Path(__file__).resolve().parent.parent
MOTION_IMITATION = "motion-imitation==0.0.6"
CACHE = Path.home() / ".cache" / "amp-jax"
HUMANOID_TARGETS = ("g1", "pi_plus", "smpl")


def find_sdist(path: str | None) -> Path:
    if path:
        return Path(path)
    found = sorted(CACHE.glob("motion_imitation-0.0.6*.tar.gz"))
    if not found:
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", MOTION_IMITATION, "-d", str(CACHE)],
                       check=True)
        found = sorted(CACHE.glob("motion_imitation-0.0.6*.tar.gz"))
    if not found:
        raise SystemExit(f"no motion_imitation-0.0.6 sdist in {CACHE}")
    return found[0]


def report(name: str, q: dict) -> None:
    print(f"{name}: {q['frames']} frames, scale {q['scale']:.3f}; "
          f"key-point error mean {q['keypoint_err_mean_cm']:.2f} cm (max {q['keypoint_err_max_cm']:.2f}); "
          f"max joint-range excess {q['joint_excess_max_rad']:.4f} rad "
          f"(clipped); foot slide in contact {q['foot_slide_max_cm']:.2f} cm; contact frames per foot "
          f"{q['contact_frames']}; lowest foot point over the clip {q['lowest_foot_cm']:.2f} cm, highest during "
          f"contact {q['contact_foot_height_max_cm']:.2f} cm; lift {q['lift_cm']:.2f} cm")
    per = ", ".join(f"{b} {e:.1f}" for b, e in q["keypoint_err_per_body_cm"].items())
    print(f"    per key point [cm]: {per}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sdist", help="motion_imitation-0.0.6.tar.gz (downloaded into ~/.cache/amp-jax if omitted)")
    ap.add_argument("--dog-pace", help="a dog_pace.txt to read instead of the sdist's "
                    "(e.g. motions/go2/laikago_dog_pace.txt, an unaltered copy)")
    ap.add_argument("--out", default=str(ROOT / "motions"), help="output root (motions/)")
    ap.add_argument("--only", default="g1,pi_plus,smpl,go2", help="comma-separated targets")
    args = ap.parse_args(argv)
    out = Path(args.out)
    only = [t.strip() for t in args.only.split(",") if t.strip()]

    src_layout, src_model = load_target("humanoid")
    walk = load_clip(ROOT / "motions/humanoid/humanoid_walk.npz", src_layout.num_dof)
    for target in only:
        layout, model = load_target(target)
        if target in HUMANOID_TARGETS:
            result = retarget(walk, src_layout, layout, MAPPINGS[("humanoid", target)], source_model=src_model,
                              target_model=model)
            name = f"{target}_walk"
        elif target == "go2":
            if args.dog_pace:
                motion = parse_laikago_motion(Path(args.dog_pace).read_text(), args.dog_pace)
            else:
                motion = read_motion_imitation_clip(find_sdist(args.sdist), "dog_pace")
            result = retarget_quadruped(motion, layout, model)
            name = "go2_pace"
        else:
            raise SystemExit(f"unknown target '{target}'")
        path = out / target / f"{name}.npz"
        path.parent.mkdir(parents=True, exist_ok=True)
        save_clip(path, result.clip)
        load_clip(path, layout.num_dof)  # the written file fits the character
        report(f"{path.relative_to(out.parent) if out.parent in path.parents else path}", result.quality)
    return 0


if __name__ == "__main__":
    sys.exit(main())
