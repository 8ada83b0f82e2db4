"""notebooks/quickstart.ipynb runs end to end on CPU with its tiny preset (AMP_JAX_NOTEBOOK_TINY=1) and
leaves its artifacts: checkpoints, learning curves, the policy video and the eval report."""

import json
import os

import imageio.v3 as iio
import nbformat
import pytest
from nbclient import NotebookClient

from conftest import REPO_ROOT

NOTEBOOK = REPO_ROOT / "notebooks" / "quickstart.ipynb"


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """(the notebook after execution, its working folder)."""
    work = tmp_path_factory.mktemp("notebook")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    env = {"AMP_JAX_NOTEBOOK_TINY": "1", "MUJOCO_GL": "egl", "JAX_PLATFORMS": "cpu",
           "PYTHONPATH": os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p)}
    with pytest.MonkeyPatch.context() as mp:  # the kernel inherits this process's environment
        for k, v in env.items():
            mp.setenv(k, v)
        NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(work)}}).execute()
    return nb, work


def test_notebook_is_stored_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)
    assert 'REPO_URL = "' in code[0].source  # the one value to set on Colab, in the first cell


def test_notebook_runs_and_leaves_its_artifacts(executed):
    nb, work = executed
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    run = work / "output" / "quickstart"
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in rows] == [1, 2, 3] and rows[-1]["samples"] == 48  # 3 x 4 steps x 4 envs
    assert sorted(p.name for p in (run / "checkpoints").iterdir() if p.name.isdigit()) == ["3"]
    png = run / "plots" / "learning_curves.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    frames = iio.imread(run / "videos" / "policy.mp4")
    assert frames.shape == (31, 480, 640, 3)  # 1 s at 30 Hz after the reset pose
    report = json.loads((run / "eval" / "report.json").read_text())
    assert report["case"] == "amp_humanoid_smoke" and report["iteration"] == 3 and report["episodes"] == 4
    assert report["kick"] is not None and report["task"] is None  # the smoke case is the spinkick
    assert "stays on the data" in (run / "eval" / "report.md").read_text()
    shown = [o for o in outputs if o.output_type == "display_data"]
    assert any("image/png" in o.data for o in shown) and any("<video" in o.data.get("text/html", "") for o in shown)
