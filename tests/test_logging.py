"""The metrics logger: console progress line and ETA, metrics.jsonl, TensorBoard scalars, and Weights &
Biases (offline run files, when wandb is installed; a clear error when it is not)."""

import json
import struct
import time
from types import SimpleNamespace

import numpy as np
import pytest

from amp_jax.cli import main
from amp_jax.errors import InputError
from amp_jax.training import metrics_logger
from amp_jax.training.metrics_logger import MetricsLogger, eta_seconds, progress_line

ROWS = [
    {"iteration": 1, "samples": 16.0, "samples_per_s": 8.0, "disc_reward_mean": 0.25, "actor_loss": -1.5,
     "disc_loss": 0.75},
    {"iteration": 2, "samples": 32.0, "samples_per_s": 16.0, "disc_reward_mean": 0.375, "actor_loss": -1.25,
     "disc_loss": 0.5},
]


def test_eta_uses_the_median_rate_of_the_recent_iterations():
    # Intervals of 16 samples in 2, 2, 10 (a checkpoint) and 2 s: median rate 8 samples/s, 100 - 64 left.
    recent = [(0.0, 0.0), (2.0, 16.0), (4.0, 32.0), (14.0, 48.0), (16.0, 64.0)]
    assert eta_seconds(100, recent) == pytest.approx(4.5)
    assert eta_seconds(100, recent[:1]) is None  # one row: its rate holds the compile, no ETA yet
    assert eta_seconds(50, recent) == 0.0


def test_progress_line_shows_samples_rate_eta_and_key_metrics_in_order():
    row = {"iteration": 3, "samples": 48.0, "samples_per_s": 24.4, "actor_loss": -1.0, "disc_reward_mean": 0.5,
           "train_episode_length": 12.5, "physics_faults": 0.0}
    assert progress_line(row, eta=3725.0) == (
        "it      3 | samples 48 | 24 samples/s | eta 1:02:05 | disc_reward_mean 0.5 | actor_loss -1 | "
        "train_episode_length 12.5")
    assert progress_line(row, eta=None).startswith("it      3 | samples 48 | 24 samples/s | disc_reward_mean")
    big = {**row, "samples": 12_582_912.0, "samples_per_s": 41_234.6}  # never scientific notation
    assert progress_line(big, eta=None).startswith("it      3 | samples 12,582,912 | 41,235 samples/s |")


def _tb_scalars(folder):
    """{tag: [(step, value)]} from tensorboardX event files (TFRecords of Event protos)."""
    from tensorboardX.proto.event_pb2 import Event

    out = {}
    for path in folder.iterdir():
        data, pos = path.read_bytes(), 0
        while pos < len(data):
            (length,) = struct.unpack("<Q", data[pos:pos + 8])
            event = Event.FromString(data[pos + 12:pos + 12 + length])
            pos += 12 + length + 4
            for v in event.summary.value:
                if v.HasField("simple_value"):
                    out.setdefault(v.tag, []).append((event.step, v.simple_value))
    return out


def test_rows_go_to_jsonl_tensorboard_and_the_console(tmp_path, monkeypatch, capsys):
    clock = iter([100.0, 102.0])
    monkeypatch.setattr(metrics_logger, "time", SimpleNamespace(time=lambda: next(clock)))
    logger = MetricsLogger(tmp_path, max_samples=64)
    for row in ROWS:
        logger.log(row)
    logger.close()
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(ln) for ln in lines] == ROWS
    scalars = _tb_scalars(tmp_path / "tb")
    assert scalars["disc_reward_mean"] == [(16, 0.25), (32, 0.375)]
    assert scalars["samples_per_s"] == [(16, 8.0), (32, 16.0)]
    assert "iteration" not in scalars and "samples" not in scalars
    out = capsys.readouterr().out.splitlines()
    # First row: no ETA yet; second: 32 left at (32 - 16) / 2 s.
    assert out[0].startswith("it      1 | samples 16 | 8 samples/s | disc_reward_mean 0.25")
    assert out[1].startswith("it      2 | samples 32 | 16 samples/s | eta 0:00:04 | disc_reward_mean 0.375")


def test_wandb_logger_without_wandb_installed_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(__import__("sys").modules, "wandb", None)  # `import wandb` raises ImportError
    with pytest.raises(InputError, match=r"pip install 'amp-jax\[wandb\]'"):
        MetricsLogger(tmp_path, None, wandb_config={})
    code = main(["train", "amp_humanoid_smoke", "--out_dir", str(tmp_path / "run"), "--logger", "wandb"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("amp-jax: error: --logger wandb: the wandb package is not installed")
    assert not (tmp_path / "run" / "checkpoints").exists()


def _wandb_records(path):
    """The protobuf Records of a W&B transaction log (.wandb): a LevelDB-style log of 32 KiB blocks
    holding chunks (crc32, length, type: 1 full, 2 first, 3 middle, 4 last) after a 7-byte header."""
    from wandb.proto import wandb_internal_pb2

    data, block, pos, pending, records = path.read_bytes(), 32768, 7, b"", []
    assert data[:4] == b":W&B"
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's zero-filled tail
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if kind == 0:
            break
        pending += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):
            records.append(wandb_internal_pb2.Record.FromString(pending))
            pending = b""
    return records


def test_wandb_offline_run_holds_the_scalars_config_and_video(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    config = {"case": "amp_humanoid_smoke", "agent": {"hidden_sizes": [16]}}
    logger = MetricsLogger(tmp_path / "run", None, wandb_config=config)
    for row in ROWS:
        logger.log(row)
    logger.video("policy", np.zeros((3, 8, 12, 3), np.uint8), 32.0, fps=30)
    logger.close()

    (run_files,) = (tmp_path / "run" / "wandb").glob("offline-run-*")  # the run lives in the run directory
    (log,) = run_files.glob("run-*.wandb")
    for _ in range(300):  # W&B's service writes the log asynchronously, ending with the exit record
        records = _wandb_records(log)
        if records and records[-1].HasField("exit"):
            break
        time.sleep(0.1)
    (run,) = [r.run for r in records if r.HasField("run")]
    assert run.display_name == "run" and run.project == "amp-jax"
    assert {u.key: json.loads(u.value_json) for u in run.config.update if u.key != "_wandb"} == config
    history = [{".".join(i.nested_key) or i.key: json.loads(i.value_json) for i in r.history.item}
               for r in records if r.HasField("history")]
    assert [(h["_step"], h["iteration"], h["disc_reward_mean"], h["actor_loss"], h["samples_per_s"])
            for h in history] == [(16, 1, 0.25, -1.5, 8.0), (32, 2, 0.375, -1.25, 16.0)]
    assert history[1]["policy._type"] == "video-file" and history[1]["policy.path"].endswith(".gif")
    gif = run_files / "files" / history[1]["policy.path"]
    assert gif.read_bytes()[:6] == b"GIF89a"
