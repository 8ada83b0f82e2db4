"""The host loop: runs the compiled training step, logs, checkpoints and tests. Nothing here is
compiled; everything it calls on device is."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import jax
import numpy as np

from amp_jax.config import Config, to_dict
from amp_jax.errors import InputError
from amp_jax.eval import evaluate
from amp_jax.learning import sharding
from amp_jax.learning.train_step import TrainState, init_train_state, make_train_step
from amp_jax.training import checkpoint, learner_state
from amp_jax.training.build import build
from amp_jax.training.metrics_logger import MetricsLogger, require_wandb
from amp_jax.training.video import TrainingVideo


class _StopFlag:
    """Set by SIGINT/SIGTERM; the loop saves at the next iteration boundary and exits. A second signal ends the
    process at once (exit code 130), even inside a long compile, where Python's own handlers cannot run: a
    thread watches the signal wakeup file descriptor, which the C-level handler writes to immediately. The
    newest complete checkpoint stays (Orbax renames a step into place only when it is whole)."""

    def __init__(self):
        self.stop = False
        self._previous = {}
        self._wakeup = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():  # Python delivers signals there only
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
            read, write = os.pipe()
            os.set_blocking(write, False)
            self._wakeup = (read, write, signal.set_wakeup_fd(write, warn_on_full_buffer=False))
            threading.Thread(target=self._watch, args=(read,), daemon=True).start()
        return self

    def _handle(self, signum, frame):
        self.stop = True
        print(f"\nreceived signal {signum}: saving a checkpoint at the end of this iteration (again: stop now)",
              flush=True)

    @staticmethod
    def _watch(read: int) -> None:
        received = 0
        while data := os.read(read, 64):
            received += sum(byte in (signal.SIGINT, signal.SIGTERM) for byte in data)
            if received >= 2:
                print("\nreceived a second signal: stopping now, without saving this iteration", file=sys.stderr,
                      flush=True)
                os._exit(130)
        os.close(read)

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        if self._wakeup is not None:
            read, write, previous = self._wakeup
            signal.set_wakeup_fd(previous)
            os.close(write)  # ends the watching thread


def iteration_row(metrics: dict, iteration: int, samples: float, seconds: float, batch: int) -> dict:
    """A flat JSON-able row of one iteration's metrics, with episode means derived from the sums."""
    m = {k: float(np.asarray(v)) for k, v in metrics.items()}
    episodes = m.pop("episodes")
    length_sum, return_sum = m.pop("episode_length_sum"), m.pop("episode_return_sum")
    row = {"iteration": iteration, "samples": samples, "samples_per_s": batch / max(seconds, 1e-9), **m,
           "train_episodes": episodes}
    if episodes > 0:
        row["train_episode_length"] = length_sum / episodes
        row["train_return"] = return_sum / episodes
        row["train_fall_rate"] = m["falls"] / episodes
    return row


def numerical_fault(row: dict) -> str | None:
    """What is not finite in an iteration's row (a loss, or parameters counted by nonfinite_params), or None."""
    bad = [k for k in ("actor_loss", "critic_loss", "disc_loss") if not np.isfinite(row[k])]
    if row.get("nonfinite_params", 0) != 0:
        bad.append(f"{row['nonfinite_params']:.0f} parameters")
    return " and ".join(bad) if bad else None


def _keep_rows_until(path: Path, iteration: int) -> None:
    """Drop the metrics rows after `iteration` (iterations lost with the state, about to be redone) and
    a row cut short by a killed process."""
    if not path.is_file():
        return
    rows = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line)["iteration"] <= iteration:
                rows.append(line + "\n")
        except (ValueError, KeyError, TypeError):
            continue
    path.write_text("".join(rows))


def _save_before_dying(mgr, iteration: int, state) -> None:
    """Checkpoint a good state that an unexpected error is about to lose (if its buffers still exist)."""
    try:
        checkpoint.save(mgr, iteration, state)
        print(f"saved iteration {iteration} before stopping on the error below", flush=True)
    except Exception as e:  # e.g. the state was donated to the step that failed
        print(f"could not save iteration {iteration} before stopping: {type(e).__name__}: {e}", flush=True)


def train(cfg: Config, run_dir: str | Path, resume: bool = False, max_iterations: int | None = None,
          wandb: bool = False, init_from: str | Path | None = None, deadline: float | None = None) -> Path:
    """Train (or resume) a run in run_dir. Returns run_dir. Stops at max_samples, max_iterations, a signal, or
    before the iteration that would end after `deadline` (a time.time() value; the estimate is the last
    training step, the last probe and video if the next iteration makes them, and the last checkpoint save;
    the first probe and video also compile, which only the time left after the deadline can absorb). A resume may change only checkpoint.RESUME_MAY_CHANGE settings (it records them); others
    are refused. Metrics go to the console, metrics.jsonl and TensorBoard, and with wandb also to Weights &
    Biases. init_from starts from a saved learner (amp_jax.training.learner_state.init_from) instead of fresh networks."""
    run_dir = Path(run_dir)
    if resume and (run_dir / checkpoint.CONFIG_FILE).is_file():  # refuses other settings before writing
        for change in checkpoint.resume_changes(run_dir, cfg):
            print(f"resuming with {change}", flush=True)
    if wandb:
        require_wandb()  # before anything compiles
    mesh = sharding.make_mesh(cfg.train.num_devices, cfg.train.num_envs)
    if mesh is not None and cfg.env.physics.impl == "warp":  # its contact buffer is shared by all worlds
        raise InputError("train.num_devices: MuJoCo Warp (env.physics.impl: warp) runs on one device; "
                         "set train.num_devices=1")
    env, learner = build(cfg)
    state = init_train_state(learner, env, cfg.train.seed, mesh)
    if init_from is not None:  # checked against the case before anything is written
        state, message = learner_state.init_from(
            state, init_from, None if mesh is None else sharding.state_shardings(TrainState, mesh))
        print(message, flush=True)
    checkpoint.save_config(run_dir, cfg)
    mgr = checkpoint.manager(run_dir, cfg.train.keep_checkpoints)
    if resume and mgr.all_steps():
        step, state = checkpoint.restore(mgr, state)
        for moved in checkpoint.set_aside_newer(mgr, step):
            print(f"an unreadable newer checkpoint was moved to {moved}", flush=True)
        print(f"resumed from {run_dir}/checkpoints step {step}", flush=True)
    train_step = make_train_step(learner, env, mesh)
    logger = MetricsLogger(run_dir, cfg.train.max_samples, wandb_config=to_dict(cfg) if wandb else None)
    video = TrainingVideo(learner, env, run_dir) if cfg.train.video_every > 0 else None
    probe = evaluate.MotionMatchingProbe(learner, env, min(4, cfg.train.num_envs)) if cfg.train.eval_every > 0 else None
    iteration = int(state.iteration)
    start_iteration = good = iteration
    seconds = {"step": 0.0, "probe": 0.0, "video": 0.0, "save": 0.0}  # the last of each: the deadline's estimate
    out_of_time = space_checked = False
    _keep_rows_until(run_dir / "metrics.jsonl", start_iteration)
    try:
        with _StopFlag() as flag:
            while True:
                if cfg.train.max_samples is not None and float(state.samples) >= cfg.train.max_samples:
                    break
                if max_iterations is not None and iteration - start_iteration >= max_iterations:
                    break
                probes_next = probe is not None and (iteration + 1) % cfg.train.eval_every == 0
                films_next = video is not None and (iteration + 1) % cfg.train.video_every == 0
                needed = (seconds["step"] + seconds["save"] + (seconds["probe"] if probes_next else 0.0)
                          + (seconds["video"] if films_next else 0.0))
                out_of_time = deadline is not None and time.time() + needed > deadline
                if out_of_time:
                    print(f"stopping at the time limit after iteration {iteration}", flush=True)
                    break
                t0 = time.time()
                state, metrics = train_step(state)
                jax.block_until_ready(metrics)
                iteration = int(state.iteration)
                seconds["step"] = time.time() - t0
                row = iteration_row(metrics, iteration, float(state.samples), seconds["step"], learner.batch_size)
                fault = numerical_fault(row)
                if probe is not None and iteration % cfg.train.eval_every == 0 and not fault:
                    t0 = time.time()
                    row.update(probe.measure(state))
                    seconds["probe"] = time.time() - t0
                logger.log(row)
                if fault:
                    raise FloatingPointError(
                        f"iteration {iteration}: {fault} not finite; stopped without saving this state: the newest "
                        f"checkpoint (step {mgr.latest_step()}) in {run_dir}/checkpoints is the last good one")
                good = iteration
                if video is not None and iteration % cfg.train.video_every == 0:
                    t0 = time.time()
                    logger.video("policy", video.record(state, iteration), row["samples"], video.fps)
                    seconds["video"] = time.time() - t0
                if iteration % cfg.train.iters_per_output == 0 or flag.stop:
                    t0 = time.time()
                    checkpoint.save(mgr, iteration, state)
                    seconds["save"] = time.time() - t0
                    if not space_checked:  # once, from the first checkpoint's size on disk
                        space_checked = True
                        if warning := checkpoint.space_warning(mgr, cfg.train.keep_checkpoints):
                            print(warning, flush=True)
                if flag.stop:
                    break
            if mgr.latest_step() != iteration:
                checkpoint.save(mgr, iteration, state)
    except Exception as e:
        # The state in hand passed the checks (a full disk would refuse it again).
        if good == iteration > (mgr.latest_step() or 0) and not isinstance(e, checkpoint.DiskFull):
            _save_before_dying(mgr, iteration, state)
        raise
    finally:
        logger.close()
    if cfg.train.test_episodes > 0 and not (flag.stop or out_of_time):  # after a signal or the time limit, exit promptly
        stats = evaluate.test_policy(learner, env, state, cfg.train.test_episodes, min(cfg.train.num_envs, cfg.train.test_episodes))
        print("test: " + ", ".join(f"{k} {v:.4g}" for k, v in stats.items()), flush=True)
    return run_dir
