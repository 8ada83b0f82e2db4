"""The browser viewer: poses as an interactive 3-D replay in one HTML file, with Brax's viewer (three.js):
drag to orbit, scroll to zoom; its panel (top right) pauses, scrubs (`time`) and sets the speed (`timeScale`).

The page loads three.js, lil-gui, pako and Brax's viewer script from their CDNs (unpkg, jsDelivr), so it
needs a browser with network access; CDN_SCRIPTS names each by package and version.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import mujoco
import numpy as np

with warnings.catch_warnings():  # Brax imports jaxopt, which warns that it is no longer maintained
    warnings.simplefilter("ignore", DeprecationWarning)
    import brax
    from brax import base
    from brax.io import html, mjcf

# What the page loads, by URL prefix: (npm package or "brax", its version, the path inside the package).
CDN_SCRIPTS = {
    "https://unpkg.com/es-module-shims@1.6.3/": ("es-module-shims", "1.6.3", ""),
    "https://unpkg.com/three@0.150.1/": ("three", "0.150.1", ""),
    "https://cdn.jsdelivr.net/npm/lil-gui@0.18.0/+esm": ("lil-gui", "0.18.0", "dist/lil-gui.esm.js"),
    "https://unpkg.com/pako@2.1.0/": ("pako", "2.1.0", ""),
    f"https://cdn.jsdelivr.net/gh/google/brax@v{brax.__version__}/brax/": ("brax", brax.__version__, ""),
}


def replay_html(model: mujoco.MjModel, qpos: np.ndarray, fps: float, height: int | None = None) -> str:
    """An HTML page replaying poses qpos [T, nq] at fps (height: pixels, for a notebook cell; None: the
    whole window)."""
    with warnings.catch_warnings():  # that Brax's own systems are no longer maintained (only its viewer is used)
        warnings.simplefilter("ignore", UserWarning)
        sys = mjcf.load_model(model)
    sys = sys.replace(opt=sys.opt.replace(timestep=1.0 / fps))  # the viewer's clock: frame i at i * timestep
    data = mujoco.MjData(model)
    states = []
    for q in np.asarray(qpos, np.float64):
        data.qpos[:] = q
        mujoco.mj_kinematics(model, data)
        x = base.Transform(pos=data.xpos[1:].copy(), rot=data.xquat[1:].copy())
        states.append(base.State(q=None, qd=None, x=x, xd=None, contact=None))
    return html.render(sys, states, height=height or 480, colab=height is not None)


def write_replay(path: str | Path, model: mujoco.MjModel, qpos: np.ndarray, fps: float) -> Path:
    """Write replay_html's page to path (an .html file)."""
    path = Path(path)
    if len(qpos) == 0:
        raise ValueError(f"{path}: no poses to replay")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(replay_html(model, qpos, fps))
    return path
