"""`amp-jax export`: a trained policy as one .npz or as an ONNX model, or a run's learner state.

- npz: the actor and discriminator parameters and their observation normalisers (leaves named as in
  amp_jax.training.learner_state: "actor_params/params/Dense_0/kernel", "obs_norm/mean", ...), the action
  "log_std", "iteration", "samples" (the environment steps trained on; policies exported before 2026-11-29
  lack it) and the resolved config as YAML text ("config.yaml"). `amp-jax test`, `eval`
  and `render` take it as --model_file; `train --init_from` sets the actor, discriminator and their
  normalisers from it.
- onnx: the deterministic policy, obs [batch, obs_size] -> action_mean [batch, actions] (the action
  AmpEnv.step takes): clip((obs - mean) / max(std, 1e-4), -10, 10), then the actor's dense layers with
  ReLU between, float32.
- learner: the learner state folder (amp_jax.training.learner_state.save) that `train --init_from` continues
  (--networks_only: without the optimiser states, half the size).
"""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np
import yaml

from amp_jax.config import Config, to_dict
from amp_jax.errors import InputError
from amp_jax.learning import normalizer
from amp_jax.learning.learner import Learner, Policy
from amp_jax.learning.train_step import init_train_state
from amp_jax.training import learner_state
from amp_jax.training.build import build, load_saved

FORMATS = ("npz", "onnx", "learner")
ONNX_OPSET = 17


def write_policy(path: str | Path, cfg: Config, learner: Learner, policy: Policy, iteration: int,
                 samples: float | None = None) -> Path:
    """Write an exported policy .npz (see the module docstring)."""
    path = Path(path)
    arrays = {**learner_state.leaves(policy, learner_state.POLICY_FIELDS), "log_std": np.asarray(learner.log_std),
              "iteration": np.int64(iteration), "format": np.array(learner_state.POLICY_FORMAT),
              "config.yaml": np.array(yaml.safe_dump(to_dict(cfg), sort_keys=False))}
    if samples is not None:
        arrays["samples"] = np.float64(samples)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:  # np.savez would append .npz to another suffix
        np.savez(f, **arrays)
    return path


def onnx_model(policy: Policy):
    """The ONNX model (onnx.ModelProto) of the deterministic policy (see the module docstring)."""
    from onnx import TensorProto, checker, helper, numpy_helper

    params = policy.actor_params["params"]
    layers = [params[f"Dense_{i}"] for i in range(len(params) - 1)] + [params["head"]]
    f32 = lambda x: np.asarray(x, np.float32)  # noqa: E731
    constants = {"obs_mean": f32(policy.obs_norm.mean),
                 "obs_std": f32(np.maximum(policy.obs_norm.std, normalizer.MIN_STD)),
                 "clip_low": f32(-normalizer.CLIP), "clip_high": f32(normalizer.CLIP)}
    nodes = [helper.make_node("Sub", ["obs", "obs_mean"], ["centred"]),
             helper.make_node("Div", ["centred", "obs_std"], ["scaled"]),
             helper.make_node("Clip", ["scaled", "clip_low", "clip_high"], ["x0"])]
    for i, layer in enumerate(layers):
        constants[f"kernel_{i}"], constants[f"bias_{i}"] = f32(layer["kernel"]), f32(layer["bias"])
        last = i == len(layers) - 1
        out = "action_mean" if last else f"pre_{i}"
        nodes.append(helper.make_node("Gemm", [f"x{i}", f"kernel_{i}", f"bias_{i}"], [out]))
        if not last:
            nodes.append(helper.make_node("Relu", [out], [f"x{i + 1}"]))
    obs_size, actions = constants["obs_mean"].shape[0], constants[f"bias_{len(layers) - 1}"].shape[0]
    graph = helper.make_graph(
        nodes, "amp_jax_policy",
        [helper.make_tensor_value_info("obs", TensorProto.FLOAT, ["batch", obs_size])],
        [helper.make_tensor_value_info("action_mean", TensorProto.FLOAT, ["batch", actions])],
        [numpy_helper.from_array(v, k) for k, v in constants.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", ONNX_OPSET)], producer_name="amp-jax")
    model.ir_version = 8  # readable by onnxruntime releases of the last few years
    checker.check_model(model)
    return model


def export(source: str | Path, out: str | Path, fmt: str = "npz", networks_only: bool = False) -> list[Path]:
    """Export a run directory (or a learner state / exported policy) as `fmt`; returns the files written.
    networks_only: a learner state without the optimiser states (learner_state.NETWORK_FIELDS)."""
    out = Path(out)
    if fmt not in FORMATS:
        raise InputError(f"export: --format must be one of {list(FORMATS)}, got {fmt!r}")
    if fmt != "learner" and out.suffix != f".{fmt}":
        raise InputError(f"export: --out {out}: --format {fmt} writes a .{fmt} file")
    if fmt == "learner":
        if learner_state.kind_of(source) == "policy":
            raise InputError(f"{source}: an exported policy holds no critic, optimiser states or counters; export "
                             "the learner state from the run directory")
        cfg = learner_state.read_config(source)
        env, learner = build(cfg)
        shapes = jax.eval_shape(lambda: init_train_state(learner, env, cfg.train.seed))
        saved = learner_state.read(source, shapes)
        state = learner_state.fill(shapes, saved, source)
        wanted = learner_state.NETWORK_FIELDS if networks_only else learner_state.LEARNER_FIELDS
        return learner_state.save(out, cfg, learner_state.leaves(state, [f for f in wanted if f in saved.fields]))
    cfg, env, learner, saved, policy = load_saved(source)
    if fmt == "npz":
        return [write_policy(out, cfg, learner, policy, saved.iteration, saved.samples)]
    try:
        import onnx
    except ImportError:
        raise InputError("export --format onnx needs the onnx package: pip install -e '.[onnx]'") from None
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(onnx_model(policy), out)
    return [out]
