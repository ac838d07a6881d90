"""The seed's notebook example, run for real: a notebook executed by a Jupyter kernel (nbclient and
ipykernel) shows the animation inline, with no magic command."""

from __future__ import annotations

import base64
import io
import re

import nbformat
import pytest
from nbclient import NotebookClient
from PIL import Image

CELL = """\
from loss_landscape_anim import loss_landscape_anim

loss_landscape_anim(n_epochs=30, output_to_file=False, progress=False)
"""


@pytest.fixture
def jupyter_env(monkeypatch, tmp_path):
    # jupyter_core warns (DeprecationWarning) unless told to use the platform's folders
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(tmp_path / "jupyter-config"))
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "jupyter-data"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "jupyter-runtime"))


def test_the_notebook_example_shows_the_animation_inline(tmp_path, jupyter_env):
    notebook = nbformat.v4.new_notebook()
    notebook.cells.append(nbformat.v4.new_code_cell(CELL))
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    client = NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},  # the kernel's working folder
    )
    client.execute()
    outputs = notebook.cells[0].outputs
    errors = [o for o in outputs if o.output_type == "error"]
    assert errors == [], errors
    shown = [o for o in outputs if o.output_type == "display_data"]
    assert len(shown) == 1, outputs
    html = shown[0].data["text/html"]
    match = re.fullmatch(r'<img src="data:image/gif;base64,([^"]+)" alt="[^"]+"/>', html)
    assert match, html[:200]
    with Image.open(io.BytesIO(base64.b64decode(match.group(1)))) as gif:
        assert gif.format == "GIF"
        assert gif.n_frames == 31  # the initial weights and one frame per epoch (full batch)
        assert gif.size == (900, 600)
    # nothing else was returned to print after the animation
    assert not [o for o in outputs if o.output_type == "execute_result"]
    assert (tmp_path / "checkpoints" / "model.pt").is_file()  # the kernel ran in tmp_path
