"""`amp-jax bench`: one row per character and batch, its table and JSON, and XLA's memory account."""

import json

import jax
import numpy as np
import pytest

from amp_jax.cli import main
from amp_jax.training import bench

TINY = ["--set", "agent.hidden_sizes=[16]", "--set", "agent.steps_per_iter=4",
        "--set", "agent.disc_buffer_size=16", "--set", "agent.disc_replay_samples=2"]


@pytest.fixture(scope="module")
def go2_rows(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    assert main(["bench", "--character", "go2", "--num_envs", "2", "--repeats", "1", "--json", str(out)] + TINY) == 0
    return json.loads(out.read_text())


def test_bench_writes_one_row_per_character_and_batch(go2_rows):
    (row,) = go2_rows
    assert row["character"] == "go2" and row["case"] == "amp_go2" and row["num_envs"] == 2
    assert row["backend"] == "jax" and row["device"] == jax.devices()[0].device_kind
    assert row["matmul_precision"] == "highest"  # train.matmul_precision's default
    assert row["ratio"] == pytest.approx(row["train_steps_per_s"] / row["physics_steps_per_s"], abs=1e-3)


def test_bench_memory_covers_the_train_state(go2_rows):
    """XLA's account of the compiled step holds at least the TrainState it takes as argument."""
    from amp_jax.catalog import CONFIG_DIR
    from amp_jax.config import load_config, parse_override
    from amp_jax.learning.train_step import init_train_state
    from amp_jax.training.build import build

    overrides = dict(parse_override(v) for v in TINY[1::2])
    cfg = load_config(CONFIG_DIR / "amp_go2.yaml", {"train.num_envs": 2, **overrides})
    env, learner = build(cfg)
    state_mb = sum(np.asarray(x).nbytes for x in jax.tree.leaves(init_train_state(learner, env, 0))) / 2**20
    assert go2_rows[0]["train_step_memory_mb"] >= round(state_mb, 1)


def test_bench_table_and_bad_input(go2_rows, capsys):
    result = bench.BenchResult(**go2_rows[0])
    lines = bench.table([result, result]).splitlines()
    assert len(lines) == 4 and lines[2].startswith("| go2 | 2 | jax |")
    assert main(["bench", "--character", "robot_dog"]) == 2
    assert "unknown character ['robot_dog']" in capsys.readouterr().err


def test_physics_only_rows_leave_the_training_step_out(go2_rows):
    row = {**go2_rows[0], **{k: None for k in ("train_steps_per_s", "ratio", "train_compile_s",
                                               "train_step_memory_mb", "peak_device_memory_mb")}}
    line = bench.table([bench.BenchResult(**row)]).splitlines()[-1]
    assert line.startswith(f"| go2 | 2 | jax | {row['physics_steps_per_s']:,.0f} | n/a | n/a | ")
