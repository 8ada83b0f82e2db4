"""Build motions/humanoid/humanoid_{spinkick,walk,run}.npz from DeepMimic's clips in the pybullet wheel.

    PYTHONPATH=. python scripts/make_motions.py [--wheel PATH] [--out motions/humanoid]

Without --wheel it downloads pybullet 3.2.7 (about 103 MB, zlib licence) into ~/.cache/amp-jax once. The
clips are read straight from the wheel; attribution is in motions/LICENSES.md.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np

from amp_jax.character import load_character
from amp_jax.importers.deepmimic import deepmimic_to_humanoid, parse_deepmimic
from amp_jax.motion import save_clip

ROOT = Path(__file__).resolve().parent.parent
PYBULLET = "pybullet==3.2.7"
CLIPS = ("spinkick", "walk", "run")


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


def report_ranges(name: str, clip, layout) -> None:
    """Print the DoFs that leave their authored range by more than 0.05 rad (they are kept, not clipped)."""
    over = np.maximum(clip.dof_pos - layout.dof_high, layout.dof_low - clip.dof_pos).max(axis=0)
    for i in np.flatnonzero(over > 0.05):
        print(f"  {name}: {layout.dof_names[i]} leaves [{layout.dof_low[i]:.3f}, {layout.dof_high[i]:.3f}] "
              f"by up to {over[i]:.3f} rad")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wheel", type=Path, help="pybullet 3.2.7 wheel (default: download into ~/.cache/amp-jax)")
    parser.add_argument("--out", type=Path, default=ROOT / "motions" / "humanoid")
    args = parser.parse_args()

    wheel = args.wheel or download_wheel(Path.home() / ".cache" / "amp-jax")
    layout = load_character(ROOT / "assets" / "humanoid" / "humanoid.xml", [], []).layout
    args.out.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as zf:
        for name in CLIPS:
            member = f"pybullet_data/data/motions/humanoid3d_{name}.txt"
            motion = parse_deepmimic(zf.read(member).decode(), f"{wheel.name}:{member}")
            clip = deepmimic_to_humanoid(motion, layout)
            path = args.out / f"humanoid_{name}.npz"
            save_clip(path, clip)
            print(f"{path}: {clip.num_frames} frames at {clip.fps:.4f} fps, loop={clip.loop}")
            report_ranges(name, clip, layout)


if __name__ == "__main__":
    main()
