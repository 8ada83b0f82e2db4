"""`amp-jax render --out rollout.html`: an interactive 3-D replay (Brax's viewer), opened in a real headless
Chromium (Debian's package) with its scripts served locally from npm packages of the versions the page asks
the CDNs for. The screenshot must show the character: the viewer's floor and sky are grey, the humanoid is
beige (red well above blue), and the same page with the character's shapes taken out shows no such pixel (moving
the character away instead is not enough: the viewer's camera follows it)."""

import base64
import functools
import http.server
import json
import re
import shutil
import subprocess
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from amp_jax.cli import main
from amp_jax.render.browser import CDN_SCRIPTS

from conftest import REPO_ROOT

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
NPM = shutil.which("npm")
JS_CACHE = Path.home() / ".cache" / "amp-jax" / "viewer-js"
pytestmark = pytest.mark.skipif(not (CHROMIUM and NPM), reason="needs Chromium and npm (.ci/run installs them)")


def _npm_packages() -> Path:
    """node_modules with the viewer's npm packages at the versions of CDN_SCRIPTS (installed once)."""
    wanted = {pkg: version for pkg, version, _ in CDN_SCRIPTS.values() if pkg != "brax"}
    modules = JS_CACHE / "node_modules"
    def installed(pkg):
        meta = modules / pkg / "package.json"
        return meta.is_file() and json.loads(meta.read_text())["version"] == wanted[pkg]
    if not all(map(installed, wanted)):
        subprocess.run([NPM, "install", "--prefix", str(JS_CACHE), "--no-audit", "--no-fund", "--silent",
                        *(f"{p}@{v}" for p, v in wanted.items())], check=True, timeout=600)
    assert all(map(installed, wanted))
    return modules


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A local web server: the npm packages and Brax's viewer scripts under /<package>/, pages at /."""
    import brax

    root = tmp_path_factory.mktemp("site")
    modules = _npm_packages()
    for pkg, _, _ in CDN_SCRIPTS.values():
        (root / pkg).symlink_to(Path(brax.__file__).parent if pkg == "brax" else modules / pkg)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def _serve(site, name: str, html: str) -> str:
    root, base = site
    for prefix, (pkg, _, inner) in CDN_SCRIPTS.items():
        html = html.replace(prefix, f"{base}/{pkg}/{inner}")
    assert not re.findall(r"https?://(?!127\.0\.0\.1)[^\"' ]+", html)  # nothing left for the network
    (root / name).write_text(html)
    return f"{base}/{name}"


def _chromium(url: str, *args) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--use-angle=swiftshader",
                           "--enable-unsafe-swiftshader", "--window-size=640,480", "--virtual-time-budget=8000",
                           *args, url], capture_output=True, text=True, timeout=180)


def _without_character(html: str) -> str:
    """The same page with no shapes on the character's bodies (the system JSON is zlib-compressed, base64-encoded)."""
    blob = re.search(r'var system = "([^"]+)"', html).group(1)
    system = json.loads(zlib.decompress(base64.b64decode(blob)))
    system["geoms"] = {link: geoms if link == "world" else [] for link, geoms in system["geoms"].items()}
    bare = base64.b64encode(zlib.compress(json.dumps(system).encode())).decode("ascii")
    return html.replace(blob, bare)


def test_render_html_is_an_interactive_replay_in_which_the_character_is_visible(site, tmp_path, capsys):
    out = tmp_path / "rollout.html"
    assert main(["render", "--model_file", str(REPO_ROOT / "tests" / "data" / "run_before_the_move"),
                 "--out", str(out), "--seconds", "0.5"]) == 0
    assert "wrote" in capsys.readouterr().out
    html = out.read_text()
    page, bare = _serve(site, "rollout.html", html), _serve(site, "bare.html", _without_character(html))

    dom = _chromium(page, "--dump-dom").stdout
    for control in (">Play / Pause<", ">time<", ">timeScale<", ">Camera<"):  # pause, scrub, speed, orbit
        assert control in dom, control
    shots = []
    for url, name in ((page, "with.png"), (bare, "without.png")):
        proc = _chromium(url, f"--screenshot={tmp_path / name}")
        assert (tmp_path / name).is_file(), proc.stderr[-2000:]
        shots.append(np.asarray(Image.open(tmp_path / name).convert("RGB"), np.int32))
    with_character, without = (np.argwhere(shot[..., 0] - shot[..., 2] > 25) for shot in shots)
    assert len(without) == 0  # grey floor and sky only
    assert len(with_character) > 50, "the character is not visible"
    rows, cols = with_character[:, 0], with_character[:, 1]
    assert cols.max() - cols.min() < 100 and rows.max() - rows.min() < 100  # one figure, not a tint everywhere
