"""Per-iteration metrics to the console (a progress line), RUN_DIR/metrics.jsonl and TensorBoard
(scalars, and policy videos as animated GIFs)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

# Shown on the console progress line, in this order, when present.
CONSOLE_KEYS = ("disc_reward_mean", "disc_loss", "disc_agent_acc", "disc_demo_acc", "actor_loss", "critic_loss",
                "train_episode_length")


class MetricsLogger:
    def __init__(self, run_dir: Path, max_samples: int | None, tensorboard: bool = True):
        self.jsonl = open(run_dir / "metrics.jsonl", "a")
        self.max_samples = max_samples
        self.start = time.time()
        self.writer = None
        if tensorboard:
            from tensorboardX import SummaryWriter

            self.writer = SummaryWriter(str(run_dir / "tb"))

    def log(self, row: dict) -> None:
        """row holds iteration, samples, samples_per_s and float metrics."""
        self.jsonl.write(json.dumps(row) + "\n")
        self.jsonl.flush()
        if self.writer is not None:
            for k, v in row.items():
                if k not in ("iteration", "samples") and isinstance(v, (int, float)):
                    self.writer.add_scalar(k, v, row["samples"])
            self.writer.flush()
        parts = [f"it {row['iteration']:6d}", f"samples {row['samples']:.3g}", f"{row['samples_per_s']:.0f}/s"]
        if self.max_samples:
            rate = row["samples"] / max(time.time() - self.start, 1e-9)
            remaining = max(self.max_samples - row["samples"], 0) / max(rate, 1e-9)
            parts.append(f"eta {remaining / 60:.1f} min")
        parts += [f"{k} {row[k]:.4g}" for k in CONSOLE_KEYS if k in row]
        print(" | ".join(parts), file=sys.stdout, flush=True)

    def video(self, tag: str, frames, samples: float, fps: float) -> None:
        """Frames [T, H, W, 3] (uint8) as an animated GIF in TensorBoard's images, as tensorboardX's
        add_video writes them (without its moviepy dependency)."""
        if self.writer is None:
            return
        from tensorboardX.proto.summary_pb2 import Summary

        from amp_jax.render import gif_bytes

        _, height, width, channels = frames.shape
        gif = gif_bytes(frames, fps)
        image = Summary.Image(height=height, width=width, colorspace=channels, encoded_image_string=gif)
        self.writer.file_writer.add_summary(Summary(value=[Summary.Value(tag=tag, image=image)]), samples)
        self.writer.flush()

    def close(self) -> None:
        self.jsonl.close()
        if self.writer is not None:
            self.writer.close()
