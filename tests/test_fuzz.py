"""Fuzz tests (hypothesis) of the input boundary: the config loader and its overrides, the clip loaders
(.npz, MimicKit .pkl, dataset YAML) and the DeepMimic .txt importer. Every input gives either a valid
result or amp_jax.errors.InputError, never another exception or a hang. numpy / yaml only: no JAX
compilation (the DeepMimic conversion runs a few eager JAX ops on valid parses)."""

import fractions
import json
import pickle
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from amp_jax.catalog import CONFIG_DIR
from amp_jax.config import load_config, parse_override, to_dict
from amp_jax.errors import InputError
from amp_jax.motion.clip import Clip, load_clip, load_motion_set, save_clip
from amp_jax.motion_tools.importers.deepmimic import FRAME_WIDTH, deepmimic_to_humanoid, parse_deepmimic, read_deepmimic

FUZZ = settings(max_examples=60, deadline=timedelta(seconds=5), derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])
D = 28  # the humanoid's DoFs
SMOKE = to_dict(load_config(CONFIG_DIR / "amp_humanoid_smoke.yaml"))  # every key, resolved

scalars = (st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=True, allow_infinity=True)
           | st.text(max_size=12))
trees = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(st.text(max_size=8) | st.integers(-3, 3), inner, max_size=4), max_leaves=12)


def _key_paths(tree, prefix=""):
    """Every dotted key path of a nested dict."""
    for k, v in tree.items():
        path = f"{prefix}{k}"
        yield path
        if isinstance(v, dict):
            yield from _key_paths(v, path + ".")


KNOWN_KEYS = sorted(_key_paths(SMOKE))


def _valid_or_input_error(fn, *args):
    try:
        return fn(*args)
    except InputError as e:
        assert str(e)
        return None


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


# -- config -------------------------------------------------------------------------------------------
@FUZZ
@given(tree=trees)
def test_config_random_yaml_trees(workdir, tree):
    path = workdir / "random.yaml"
    path.write_text(yaml.safe_dump(tree))
    _valid_or_input_error(load_config, path)


@FUZZ
@given(text=st.text(max_size=200) | st.binary(max_size=200))
def test_config_random_text(workdir, text):
    path = workdir / "text.yaml"
    (path.write_bytes if isinstance(text, bytes) else path.write_text)(text)
    _valid_or_input_error(load_config, path)


@FUZZ
@given(changes=st.lists(st.tuples(st.sampled_from(KNOWN_KEYS) | st.text(max_size=12), trees), max_size=3))
def test_config_mutated_smoke_config(workdir, changes):
    """The smoke config with random values at known (or random) key paths, given as overrides."""
    _valid_or_input_error(load_config, CONFIG_DIR / "amp_humanoid_smoke.yaml", dict(changes))


@FUZZ
@given(texts=st.lists(st.text(max_size=30)
                      | st.builds("{}={}".format, st.sampled_from(KNOWN_KEYS), st.text(max_size=10)), max_size=3))
def test_config_random_override_strings(texts):
    def load():
        return load_config(CONFIG_DIR / "amp_humanoid_smoke.yaml", dict(parse_override(t) for t in texts))

    _valid_or_input_error(load)


# -- clips -----------------------------------------------------------------------------------------------
FIELDS = ["fps", "loop", "root_pos", "root_rot", "dof_pos", "character", "dof_names"]
dtypes = st.sampled_from([np.float32, np.float64, np.int32, np.bool_, np.complex64, np.uint8, "U3", "S2"])
arrays = hnp.arrays(dtypes, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5))


def _valid_fields(n=4):
    rng = np.random.default_rng(0)
    q = rng.normal(size=(n, 4))
    return {"fps": np.float32(30), "loop": np.bool_(True), "root_pos": rng.normal(size=(n, 3)).astype(np.float32),
            "root_rot": (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32),
            "dof_pos": rng.normal(size=(n, D)).astype(np.float32)}


@FUZZ
@given(fields=st.dictionaries(st.sampled_from(FIELDS) | st.text(min_size=1, max_size=6), arrays, max_size=8),
       start_valid=st.booleans())
def test_npz_random_keys_shapes_dtypes(workdir, fields, start_valid):
    data = {**_valid_fields(), **fields} if start_valid else fields
    data = {k.replace("/", "_") or "x": v for k, v in data.items()}
    path = workdir / "clip.npz"
    with open(path, "wb") as fh:
        np.savez(fh, **data)
    clip = _valid_or_input_error(load_clip, path, D)
    assert clip is None or (clip.dof_pos.shape[1] == D and clip.num_frames >= 2 and clip.fps > 0)


@FUZZ
@given(data=st.binary(max_size=300), suffix=st.sampled_from([".pkl", ".npz"]))
def test_random_bytes_as_clip(workdir, data, suffix):
    path = workdir / f"bytes{suffix}"
    path.write_bytes(data)
    assert _valid_or_input_error(load_clip, path, D) is None


frame_values = (trees | arrays | st.lists(st.lists(st.floats(-4, 4) | st.integers(-2, 2), min_size=0, max_size=D + 8),
                                          max_size=5))


@FUZZ
@given(entries=st.dictionaries(st.sampled_from(["fps", "frames", "loop_mode", "other"]), frame_values, max_size=4),
       width=st.sampled_from([D + 6, D + 5, 3]), n=st.integers(0, 4), protocol=st.sampled_from([2, 4, 5]))
def test_pickled_random_dicts(workdir, entries, width, n, protocol):
    rng = np.random.default_rng(n)
    data = {"fps": 30, "loop_mode": 1, "frames": rng.uniform(-1, 1, (n, width)), **entries}
    path = workdir / "clip.pkl"
    path.write_bytes(pickle.dumps(data, protocol=protocol))
    clip = _valid_or_input_error(load_clip, path, D)
    assert clip is None or clip.dof_pos.shape[1] == D


def test_pickle_with_foreign_globals_is_refused(workdir):
    """A pickle that would import anything but numpy's array machinery is refused, not executed."""
    path = workdir / "evil.pkl"
    path.write_bytes(pickle.dumps({"fps": fractions.Fraction(30), "loop_mode": 1, "frames": np.zeros((4, 34))}))
    with pytest.raises(InputError, match="evil.pkl.*fractions.Fraction"):
        load_clip(path, D)


@pytest.fixture(scope="module")
def dataset_dir(workdir):
    d = workdir / "dataset"
    d.mkdir()
    f = _valid_fields()
    save_clip(d / "good.npz", Clip(fps=30.0, loop=True, root_pos=f["root_pos"], root_rot=f["root_rot"],
                                   dof_pos=f["dof_pos"]))
    return d


@FUZZ
@given(motions=st.lists(st.fixed_dictionaries({}, optional={
    "file": st.sampled_from(["good.npz", "missing.npz", "good.txt", "", ".", "\x00"]) | trees,
    "weight": st.sampled_from([1.0, 0.0, -1.0, float("nan"), float("inf")]) | trees}) | trees, max_size=4),
       wrap=st.booleans())
def test_dataset_yamls(dataset_dir, motions, wrap):
    path = dataset_dir / "dataset.yaml"
    path.write_text(yaml.safe_dump({"motions": motions} if wrap else motions))
    result = _valid_or_input_error(load_motion_set, path, D)
    if result is not None:
        clips, weights, names = result
        assert len(clips) == len(weights) == len(names) >= 1 and sum(weights) > 0 and min(weights) >= 0


# -- DeepMimic -------------------------------------------------------------------------------------------
SPINKICK = json.loads((Path(__file__).parent / "data/humanoid3d_spinkick.txt").read_text())["Frames"]


@pytest.fixture(scope="module")
def humanoid_layout(humanoid):
    return humanoid.layout


numbers_or_junk = st.floats(-2, 2) | st.none() | st.text(max_size=2) | st.lists(st.floats(-1, 1), max_size=2)


@FUZZ
@given(frames=st.lists(st.lists(numbers_or_junk, min_size=FRAME_WIDTH - 1,
                                max_size=FRAME_WIDTH + 1), max_size=4) | trees,
       loop=st.sampled_from(["wrap", "none", "clamp"]) | trees)
def test_deepmimic_random_json(frames, loop):
    _valid_or_input_error(parse_deepmimic, json.dumps({"Loop": loop, "Frames": frames}), "fuzz.txt")


@FUZZ
@given(start=st.integers(0, len(SPINKICK) - 1), n=st.integers(1, 4), row=st.integers(0, 3),
       column=st.integers(0, FRAME_WIDTH - 1), value=st.sampled_from([None, 0.0, -1.0, 0.5, 1e30, float("nan")]))
def test_deepmimic_frames_convert_or_refuse(humanoid_layout, start, n, row, column, value):
    """Real DeepMimic frames convert to a valid humanoid clip; one bad number (a zero or negative duration,
    a non-unit quaternion, NaN, a huge position) is refused or still converts to a valid clip."""
    frames = [list(f) for f in SPINKICK[start:start + n]]
    if value is not None:
        frames[row % len(frames)][column] = value
    text = json.dumps({"Loop": "wrap", "Frames": frames})
    motion = _valid_or_input_error(parse_deepmimic, text, "fuzz.txt")
    if motion is not None:
        clip = _valid_or_input_error(deepmimic_to_humanoid, motion, humanoid_layout)
        assert clip is None or (clip.dof_pos.shape == (len(frames), D) and np.all(np.isfinite(clip.dof_pos)))


@FUZZ
@given(data=st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_deepmimic_random_files(workdir, data):
    path = workdir / "clip.txt"
    path.write_bytes(data)
    _valid_or_input_error(read_deepmimic, path)
