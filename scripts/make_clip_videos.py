"""Make docs/clips/<clip>.gif for every shipped clip with `amp-jax view-motion`, and the clip table of
docs/motions.md (the quality report of `amp-jax inspect` beside each GIF).

    MUJOCO_GL=egl PYTHONPATH=. python scripts/make_clip_videos.py [--only NAME,...] [--table-only]

Each clip is rendered by `amp-jax view-motion` on the character its `character` field names (with the first
case using it, as `amp-jax inspect` does) at 240 x 180, the camera scaled to the character's size
(amp_jax.render.frames.camera_scale_for: mean root height / 0.9 m, at most 1). To keep the GIFs small (~100 KB) every second frame is kept (15 frames/s,
the same speed) and the colours are reduced to 32. The table goes between the markers
`<!-- clips:start -->` and `<!-- clips:end -->` of docs/motions.md; the rest of that file is written by hand.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
from pathlib import Path

import numpy as np

from amp_jax.cli import main as amp_jax
from amp_jax.motion_tools import clip_quality

ROOT = Path(__file__).resolve().parent.parent
CLIPS_DIR = ROOT / "docs" / "clips"
MOTIONS_MD = ROOT / "docs" / "motions.md"
WIDTH, HEIGHT = 240, 180
FRAME_STEP = 2
COLOURS = 32
START, END = "<!-- clips:start -->", "<!-- clips:end -->"


def shipped_clips() -> list[Path]:
    return sorted((ROOT / "motions").glob("**/*.npz"))


def shrink_gif(frames: np.ndarray, fps: float) -> bytes:
    """Every FRAME_STEP-th frame, COLOURS colours, unchanged playback speed."""
    from PIL import Image

    images = [Image.fromarray(f).quantize(colors=COLOURS, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
              for f in frames[::FRAME_STEP]]
    out = io.BytesIO()
    images[0].save(out, format="GIF", save_all=True, append_images=images[1:], loop=0, optimize=True,
                   duration=round(1000.0 * FRAME_STEP / fps))
    return out.getvalue()


def make_gif(path: Path) -> Path:
    import imageio.v3 as iio

    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.gif"
        rc = amp_jax(["view-motion", str(path), "--out", str(raw), "--width", str(WIDTH), "--height", str(HEIGHT)])
        if rc != 0:
            raise SystemExit(f"view-motion failed on {path}")
        frames = iio.imread(raw, index=None)[..., :3]
    out = CLIPS_DIR / f"{path.stem}.gif"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(shrink_gif(frames, 30.0))  # view-motion samples at the case's control rate, 30 Hz
    return out


def table() -> str:
    """The Markdown table of every shipped clip: its GIF, the inspect numbers, and the limits check."""
    rows = ["| clip | video | foot slip mean (m/s) | contact (min) | scuff (max) | penetration (cm) | "
            "median lowest (cm) | joint excess (rad, frames) | speed mean (m/s) | heading (deg) |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for path in shipped_clips():
        r = clip_quality.inspect_file(path)
        j, g = r["joint_limits"], r["ground"]
        rel = path.relative_to(ROOT)
        rows.append(f"| [`{path.stem}`](../{rel}) | ![{path.stem}](clips/{path.stem}.gif) | "
                    f"{r['foot_slip_mean_m_s']:.3f} | {r['contact_fraction_min']:.2f} | {r['scuff_fraction_max']:.2f} | "
                    f"{100 * g['penetration_m']:.2f} | {100 * g['lowest_median_m']:.2f} | "
                    f"{j['max_excess_rad']:.3f} ({j['frames']}) | {r['root']['speed_mean_m_s']:.2f} | "
                    f"{r['root']['heading_change_deg']:+.0f} |")
    return "\n".join(rows)


def write_table() -> None:
    text = MOTIONS_MD.read_text()
    if START not in text or END not in text:
        raise SystemExit(f"{MOTIONS_MD} needs the markers {START} and {END}")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    MOTIONS_MD.write_text(f"{head}{START}\n{table()}\n{END}{tail}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", help="comma-separated clip names (file stems)")
    ap.add_argument("--table-only", action="store_true", help="only rewrite the table of docs/motions.md")
    args = ap.parse_args(argv)
    if not args.table_only:
        only = set(args.only.split(",")) if args.only else None
        for path in shipped_clips():
            if only is None or path.stem in only:
                out = make_gif(path)
                print(f"{out.relative_to(ROOT)}: {out.stat().st_size / 1024:.0f} KB", flush=True)
    write_table()
    print(f"wrote the table of {MOTIONS_MD.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
