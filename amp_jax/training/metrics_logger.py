"""Per-iteration metrics to the console (a progress line), RUN_DIR/metrics.jsonl and TensorBoard
(scalars, and policy videos as animated GIFs), and optionally to Weights & Biases (the same scalars and
videos, with the run config)."""

from __future__ import annotations

import collections
import io
import json
import os
import sys
import time
from pathlib import Path

from amp_jax.errors import InputError

# Shown on the console progress line, in this order, when present.
CONSOLE_KEYS = ("disc_reward_mean", "task_reward_mean", "mm_stay", "mm_cover", "root_speed", "disc_loss",
                "disc_agent_acc", "disc_demo_acc", "actor_loss", "critic_loss", "train_episode_length")


RATE_WINDOW = 20  # iterations whose median rate gives the ETA


def eta_seconds(max_samples: float, recent: list[tuple[float, float]]) -> float | None:
    """Seconds until max_samples at the median rate between the recent logged iterations of this process
    (recent: their (time, samples), oldest first), or None before there are two. The median ignores the
    odd slow iteration (a checkpoint, a probe compiling) and the first, which holds the compile."""
    rates = sorted((s1 - s0) / (t1 - t0) for (t0, s0), (t1, s1) in zip(recent, recent[1:]) if t1 > t0 and s1 > s0)
    if not rates:
        return None
    rate = 0.5 * (rates[(len(rates) - 1) // 2] + rates[len(rates) // 2])
    return max(max_samples - recent[-1][1], 0.0) / rate


def _clock(seconds: float) -> str:
    minutes, s = divmod(int(round(seconds)), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{s:02d}"


def progress_line(row: dict, eta: float | None) -> str:
    """The console line of one iteration: iteration, samples, samples/s, ETA, then CONSOLE_KEYS."""
    parts = [f"it {row['iteration']:6d}", f"samples {row['samples']:,.0f}", f"{row['samples_per_s']:,.0f} samples/s"]
    if eta is not None:
        parts.append(f"eta {_clock(eta)}")
    parts += [f"{k} {row[k]:.4g}" for k in CONSOLE_KEYS if k in row]
    return " | ".join(parts)


def require_wandb():
    """The wandb module, or an InputError saying how to install it."""
    try:
        import wandb
    except ImportError:
        raise InputError("--logger wandb: the wandb package is not installed; "
                         "pip install 'amp-jax[wandb]' (or pip install wandb)") from None
    return wandb


def start_wandb(run_dir: Path, config: dict):
    """A Weights & Biases run stored under RUN_DIR/wandb, named after the run directory, holding the run
    config. W&B's environment applies (WANDB_PROJECT, default amp-jax; WANDB_ENTITY; WANDB_MODE=offline)."""
    return require_wandb().init(project=os.environ.get("WANDB_PROJECT", "amp-jax"), name=run_dir.resolve().name,
                      dir=str(run_dir), config=config)


class MetricsLogger:
    """wandb_config: the run config (a plain dict) to log to a new W&B run; None: no W&B."""

    def __init__(self, run_dir: Path, max_samples: int | None, tensorboard: bool = True,
                 wandb_config: dict | None = None):
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        self.wandb = start_wandb(run_dir, wandb_config) if wandb_config is not None else None
        self.jsonl = open(run_dir / "metrics.jsonl", "a")
        self.max_samples = max_samples
        self.recent = collections.deque(maxlen=RATE_WINDOW + 1)  # (time, samples) of the last logged iterations
        self.writer = None
        if tensorboard:
            from tensorboardX import SummaryWriter

            self.writer = SummaryWriter(str(run_dir / "tb"))

    def log(self, row: dict) -> None:
        """row holds iteration, samples, samples_per_s and float metrics."""
        self.recent.append((time.time(), row["samples"]))
        self.jsonl.write(json.dumps(row) + "\n")
        self.jsonl.flush()
        scalars = {k: v for k, v in row.items() if k not in ("iteration", "samples") and isinstance(v, (int, float))}
        if self.writer is not None:
            for k, v in scalars.items():
                self.writer.add_scalar(k, v, row["samples"])
            self.writer.flush()
        if self.wandb is not None:
            self.wandb.log({**scalars, "iteration": row["iteration"]}, step=int(row["samples"]))
        eta = eta_seconds(self.max_samples, list(self.recent)) if self.max_samples else None
        print(progress_line(row, eta), file=sys.stdout, flush=True)

    def video(self, tag: str, frames, samples: float, fps: float) -> None:
        """Frames [T, H, W, 3] (uint8) as an animated GIF in TensorBoard's images, as tensorboardX's
        add_video writes them (without its moviepy dependency), and as a W&B video."""
        if self.writer is None and self.wandb is None:
            return
        from amp_jax.render.video import gif_bytes

        gif = gif_bytes(frames, fps)
        if self.writer is not None:
            from tensorboardX.proto.summary_pb2 import Summary

            _, height, width, channels = frames.shape
            image = Summary.Image(height=height, width=width, colorspace=channels, encoded_image_string=gif)
            self.writer.file_writer.add_summary(Summary(value=[Summary.Value(tag=tag, image=image)]), samples)
            self.writer.flush()
        if self.wandb is not None:
            self.wandb.log({tag: require_wandb().Video(io.BytesIO(gif), format="gif")}, step=int(samples))

    def close(self) -> None:
        self.jsonl.close()
        if self.writer is not None:
            self.writer.close()
        if self.wandb is not None:
            self.wandb.finish()
