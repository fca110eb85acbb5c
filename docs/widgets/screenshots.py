"""Screenshots of notebook 02's ipywidgets explorer in JupyterLab, in a real headless browser.

Starts JupyterLab on 127.0.0.1 (a free port, a random token) on a copy of
`notebooks/02_multires_crops.ipynb` in a temporary folder, opens it in headless Chromium through
Selenium (window 1400 x 1000), runs all cells, and saves the explorer of section 2 (the sliders
and the figure) before and after moving the "detail x" slider two steps with the arrow key:
`before.png` and `after.png` in `docs/widgets/` (or `--out`), cut to the explorer.

JupyterLab and its kernel get temporary HRDA_DATA / HRDA_RESULTS / HRDA_SCRATCH folders (the
notebook makes its synthetic data there; the committed runs of 03 and 06 are copied into the
results folder, so that the notebook shows the trained model they hold, if any) and temporary
Jupyter config, settings and workspace folders: nothing but the two PNGs is written. JupyterLab
is shut down in any case. Exit status 1, with one line, if the two screenshots are identical
(the figure did not change); 2 if a requirement is missing.

Needs, none of them installed by the script nor a dependency of the project:
selenium in the virtualenv (`.venv/bin/pip install selenium`), and Chromium with its driver
(Debian: `apt-get install chromium chromium-driver`).

    .venv/bin/python docs/widgets/screenshots.py [--profile smoke] [--out docs/widgets]

About 40 s on 2 CPU cores with the smoke or the synthetic profile (most of it starting the
kernel and running the notebook).
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "notebooks" / "02_multires_crops.ipynb"
EXPLORER_CALL = "plots.multires_explorer("  # finds the explorer's cell
EXPLORER = ".jp-OutputArea-output .widget-vbox"  # the explorer in its cell
SLIDER = "detail x"  # the slider that is moved, by its description
STEPS = 2  # arrow-key presses on it
WINDOW = (1400, 1000)  # browser window, px
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
# Where the notebook finds the trained HRDA it shows (`hrda_lib.reproduction.runs.model_for_views`).
TRAINED_RUNS = ("06_full_training", "03_scale_attention")
SETTINGS = {  # JupyterLab's, by plugin
    # No "fetch Jupyter news?" toast over the notebook.
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false"},
    # Every cell laid out: with the default ("contentVisibility") the heights of cells not yet
    # seen are guesses, and scrolling the explorer to the top of the panel stops short.
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
}

# JavaScript run in the page, through `window.jupyterapp` (--expose-app-in-browser).
# The explorer's cell node once the notebook is open and its kernel ready, else null.
JS_EXPLORER_CELL = """
const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
if (!panel || !panel.sessionContext || !panel.sessionContext.session
    || !panel.sessionContext.session.kernel
    || panel.sessionContext.session.kernel.connectionStatus !== 'connected') return null;
const cell = panel.content.widgets.find(
  c => c.model.sharedModel.getSource().includes(arguments[0]));
return cell ? cell.node : null;
"""
# Run all cells; calls back with the outcome (true when every cell ran) once they have run.
JS_RUN_ALL = """
const done = arguments[arguments.length - 1];
window.jupyterapp.shell.collapseLeft();
window.jupyterapp.commands.execute('notebook:run-all-cells').then(done, e => done(String(e)));
"""
JS_LOADED = "return arguments[0].complete && arguments[0].naturalWidth > 0;"
# True when the kernel is idle and the figure (the image, arguments[0]) loaded.
JS_SETTLED = """
const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
return kernel.status === 'idle' && arguments[0].complete && arguments[0].naturalWidth > 0;
"""
# The visible box of an element (arguments[0]) in the notebook's panel: (left, top, right,
# bottom), in px of the window.
JS_VISIBLE_BOX = """
const shown = window.jupyterapp.shell.currentWidget.content.node.getBoundingClientRect();
const box = arguments[0].getBoundingClientRect();
return [box.left, Math.max(box.top, shown.top), box.right, Math.min(box.bottom, shown.bottom)];
"""


def missing_requirements() -> str | None:
    """One line saying what is missing to run the script, or None."""
    needs = []
    if importlib.util.find_spec("selenium") is None:
        needs.append("selenium (.venv/bin/pip install selenium)")
    if not any(shutil.which(name) for name in BROWSERS):
        needs.append("Chromium (apt-get install chromium)")
    if not shutil.which("chromedriver"):
        needs.append("chromedriver (apt-get install chromium-driver)")
    return f"screenshots.py needs {', '.join(needs)}" if needs else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(condition, timeout: float, what: str, poll: float = 0.25):
    """The first truthy value of `condition()`, polled for at most `timeout` seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(poll)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def copy_notebook(folder: Path, profile: str | None) -> Path:
    """The notebook copied into `folder`, without outputs, with `profile` injected if given
    (as papermill does it: a cell after the parameters cell)."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    if profile is not None:
        from papermill.iorw import load_notebook_node
        from papermill.parameterize import parameterize_notebook

        nb = parameterize_notebook(load_notebook_node(str(NOTEBOOK)), {"profile": profile})
    folder.mkdir(parents=True)
    path = folder / NOTEBOOK.name
    nbformat.write(nb, path)
    return path


def start_lab(tmp: Path, root: Path, port: int, token: str, log) -> subprocess.Popen:
    """JupyterLab on 127.0.0.1:`port` serving `root`, every folder it or the notebook writes
    under `tmp`; in its own process group, so that its kernels can be stopped with it."""
    env = dict(os.environ)
    for name, sub in [
        ("HRDA_DATA", "data"),
        ("HRDA_RESULTS", "results"),
        ("HRDA_SCRATCH", "scratch"),
        ("JUPYTER_CONFIG_DIR", "jupyter/config"),
        ("JUPYTER_RUNTIME_DIR", "jupyter/runtime"),
        ("JUPYTERLAB_SETTINGS_DIR", "jupyter/settings"),
        ("JUPYTERLAB_WORKSPACES_DIR", "jupyter/workspaces"),
        ("IPYTHONDIR", "ipython"),
    ]:
        env[name] = str(tmp / sub)
    env["OMP_NUM_THREADS"] = "1"  # the tests' setting: fast on small shared CPUs
    for stem in TRAINED_RUNS:  # copies: the notebook reads them, nothing can write into results/
        if (REPO / "results" / stem / "runs").is_dir():
            shutil.copytree(REPO / "results" / stem / "runs", tmp / "results" / stem / "runs")
    for plugin, values in SETTINGS.items():
        path = tmp / "jupyter/settings" / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--port-retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--expose-app-in-browser",
        # Nothing fetched from the internet.
        "--LabApp.extension_manager=readonly",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    if os.geteuid() == 0:  # e.g. in a container
        command.append("--allow-root")
    return subprocess.Popen(
        command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )


def stop_lab(lab: subprocess.Popen, base: str, token: str) -> None:
    """Shut JupyterLab and its kernels down through its API, else by signals to its group."""
    try:
        request = urllib.request.Request(
            f"{base}/api/shutdown", method="POST", headers={"Authorization": f"token {token}"}
        )
        urllib.request.urlopen(request, timeout=10).close()
        lab.wait(timeout=30)
    except Exception:  # not started, not answering or not stopping: signals
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(lab.pid, sig)
                lab.wait(timeout=10)
                break
            except (ProcessLookupError, subprocess.TimeoutExpired):
                continue


def lab_is_up(lab: subprocess.Popen, base: str, token: str) -> bool:
    if lab.poll() is not None:
        raise RuntimeError(f"JupyterLab exited with status {lab.returncode}")
    try:
        with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as answer:
            return answer.status == 200
    except OSError:
        return False


def open_browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = next(shutil.which(b) for b in BROWSERS if shutil.which(b))
    for argument in [
        "--headless=new",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        "--force-device-scale-factor=1",
        "--no-sandbox",  # as root, e.g. in a container
        "--disable-dev-shm-usage",
    ]:
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)


def shoot(driver, url: str, out: Path, timeout: float) -> None:
    """Open the notebook, run it, and save the explorer before and after moving the slider."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver.set_script_timeout(timeout)
    driver.get(url)
    cell = wait_until(
        lambda: driver.execute_script(JS_EXPLORER_CELL, EXPLORER_CALL),
        timeout,
        "the notebook and its kernel",
    )
    outcome = driver.execute_async_script(JS_RUN_ALL)
    if outcome is not True:
        raise RuntimeError(f"running all cells failed: {outcome}")

    # The widget views are drawn after the cells have run, and the figure (a PNG) loads after.
    def figure_shown():
        images = cell.find_elements(By.CSS_SELECTOR, f"{EXPLORER} img")
        return images and driver.execute_script(JS_LOADED, images[0]) and images[0]

    image = wait_until(figure_shown, timeout, "the explorer's figure")
    explorer = cell.find_element(By.CSS_SELECTOR, EXPLORER)
    capture(driver, explorer, out / "before.png")

    slider = explorer.find_element(
        By.XPATH, f".//div[contains(@class, 'widget-slider')][.//label[text()='{SLIDER}']]"
    )
    readout = slider.find_element(By.CSS_SELECTOR, ".widget-readout").text
    first_src = image.get_attribute("src")
    slider.find_element(By.CSS_SELECTOR, ".noUi-handle").send_keys(*[Keys.ARROW_RIGHT] * STEPS)
    if slider.find_element(By.CSS_SELECTOR, ".widget-readout").text == readout:
        raise RuntimeError(f"the {SLIDER!r} slider did not move from {readout}")
    wait_until(lambda: image.get_attribute("src") != first_src, timeout, "the redrawn figure")
    # Each move is one render in the kernel (several moves may come as one): the last figure is
    # shown once the kernel has stayed idle a while with the image loaded.
    idle_since = time.monotonic()
    end = idle_since + timeout
    while time.monotonic() - idle_since < 1.5:
        if time.monotonic() > end:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for the last redraw")
        time.sleep(0.25)
        if not driver.execute_script(JS_SETTLED, image):
            idle_since = time.monotonic()
    capture(driver, explorer, out / "after.png")


def capture(driver, element, path: Path) -> None:
    """A screenshot of `element` scrolled to the top of the notebook, cut to what of it the
    notebook's panel shows (not the status bar over its bottom), once it stays in place."""
    from PIL import Image

    for _ in range(10):
        driver.execute_script("arguments[0].scrollIntoView({block: 'start'});", element)
        time.sleep(0.5)  # let the panel repaint
        box = driver.execute_script(JS_VISIBLE_BOX, element)
        window = driver.get_screenshot_as_png()
        if driver.execute_script(JS_VISIBLE_BOX, element) == box:
            break
    else:
        raise RuntimeError(f"the explorer did not stay in place for {path.name}")
    Image.open(io.BytesIO(window)).crop(tuple(round(v) for v in box)).save(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--profile", help="the notebook's `profile` parameter (default: the notebook's own)"
    )
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent, help="folder of the two PNGs"
    )
    parser.add_argument("--timeout", type=float, default=300, help="seconds for each wait")
    args = parser.parse_args(argv)
    problem = missing_requirements()
    if problem:
        print(problem, file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="hrda-widgets-") as name:
        tmp = Path(name)
        notebook = copy_notebook(tmp / "lab", args.profile)
        port, token = free_port(), secrets.token_hex(16)
        base = f"http://127.0.0.1:{port}"
        log_path = tmp / "jupyterlab.log"
        with log_path.open("w") as log:
            lab = start_lab(tmp, notebook.parent, port, token, log)
        driver = None
        try:
            wait_until(lambda: lab_is_up(lab, base, token), args.timeout, "JupyterLab to start")
            driver = open_browser()
            shoot(driver, f"{base}/lab/tree/{notebook.name}?token={token}", args.out, args.timeout)
        except Exception:
            print(f"--- last lines of the JupyterLab log:\n{_tail(log_path)}", file=sys.stderr)
            raise
        finally:
            if driver is not None:
                driver.quit()
            stop_lab(lab, base, token)
    before, after = args.out / "before.png", args.out / "after.png"
    if before.read_bytes() == after.read_bytes():
        print(f"{before} and {after} are identical: the figure did not change", file=sys.stderr)
        return 1
    print(f"wrote {before} and {after} in {time.monotonic() - start:.0f} s")
    return 0


def _tail(path: Path, lines: int = 20) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


if __name__ == "__main__":
    sys.exit(main())
