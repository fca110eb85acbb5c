"""Where things live, and records that name no path of one machine (`paths.portable`, the
runner's executed copies)."""

from __future__ import annotations

import json

import nbformat

from hrda_lib.paths import REPO_ROOT, machine_roots, portable
from hrda_lib.reproduction import runner

ROOTS = {"/srv/checkout": ".", "/mnt/disk2/data": "$HRDA_DATA", "/mnt/disk2": "~"}


def test_portable_writes_paths_relative_to_their_root() -> None:
    assert portable("/srv/checkout/results/02/config.json", ROOTS) == "results/02/config.json"
    assert portable("PosixPath('/srv/checkout')", ROOTS) == "PosixPath('.')"
    assert portable("cd /srv/checkout && ls", ROOTS) == "cd . && ls"
    # The longest root wins; the tail after a root stays as it is, numbers included.
    assert portable("exist: /mnt/disk2/data/gta/images", ROOTS) == "exist: $HRDA_DATA/gta/images"
    assert portable("/mnt/disk2/x1.5 /mnt/disk2", ROOTS) == "~/x1.5 ~"
    # Only whole path components: neither a longer name nor a path that merely ends like a root.
    for text in ("/srv/checkout2/x", "/srv/checkout.bak", "/x/srv/checkout/y", "a/srv/checkout"):
        assert portable(text, ROOTS) == text


def test_machine_roots_name_the_repository_and_roots_outside_it(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("HRDA_DATA", str(tmp_path / "data"))
    monkeypatch.delenv("HRDA_RESULTS", raising=False)
    roots = machine_roots()
    assert roots[str(REPO_ROOT)] == "."
    assert roots[str(tmp_path / "data")] == "$HRDA_DATA"
    assert str(REPO_ROOT / "results") not in roots  # under the repository: relative to it
    line = f"{REPO_ROOT}/results/x and {tmp_path}/data/gta"
    assert portable(line) == "results/x and $HRDA_DATA/gta"


def test_portable_notebook_rewrites_text_and_leaves_images(tmp_path) -> None:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("print(ROOT)")
    cell.outputs = [
        nbformat.v4.new_output("stream", text="results in /srv/checkout/results/01\n"),
        nbformat.v4.new_output(
            "display_data", data={"image/png": "+/srv/checkout/BB", "text/plain": "/srv/checkout"}
        ),
    ]
    nb.cells = [cell]
    nb.metadata["papermill"] = {"input_path": "/srv/checkout/notebooks/01.ipynb"}
    path = tmp_path / "01.ipynb"
    nbformat.write(nb, path)
    assert runner.portable_notebook(path, ROOTS)
    again = json.loads(path.read_text())
    assert again["metadata"]["papermill"]["input_path"] == "notebooks/01.ipynb"
    stream, display = again["cells"][0]["outputs"]
    assert "".join(stream["text"]) == "results in results/01\n"
    assert display["data"]["image/png"] == "+/srv/checkout/BB"  # images as they are
    assert "".join(display["data"]["text/plain"]) == "."
    before = path.read_text()
    assert not runner.portable_notebook(path, ROOTS) and path.read_text() == before


def test_execute_writes_an_executed_copy_without_machine_paths(monkeypatch, tmp_path) -> None:
    results = tmp_path / "results"
    monkeypatch.setenv("HRDA_RESULTS", str(results))
    source = tmp_path / "notebooks" / "99_paths.ipynb"
    source.parent.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import os\nprint(os.environ['HRDA_RESULTS'])")]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, source)
    runner.execute(source, {}, results)
    executed = json.loads((results / "99_paths" / "99_paths.ipynb").read_text())
    assert (
        executed["metadata"]["papermill"]["output_path"] == "$HRDA_RESULTS/99_paths/99_paths.ipynb"
    )
    assert "".join(executed["cells"][0]["outputs"][0]["text"]) == "$HRDA_RESULTS\n"
