"""examples/quickstart.ipynb runs top to bottom in a Jupyter kernel (nbclient) on the real data
set, with its figures inline; and nothing fashiongan imports switches matplotlib's backend."""

import subprocess
import sys
from pathlib import Path

import nbclient
import nbformat

NOTEBOOK = Path(__file__).parent.parent / "examples" / "quickstart.ipynb"


def test_quickstart_notebook_runs_and_shows_its_figures(real_data, tmp_path, monkeypatch):
    monkeypatch.setenv("FASHIONGAN_DATA", str(real_data))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(
        nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()  # a cell that raises fails the test with the cell's traceback
    code = [c for c in nb.cells if c.cell_type == "code"]
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors
    images = [c.source.splitlines()[0] for c in code
              if any("image/png" in o.get("data", {}) for o in c.outputs)]  # fmt: skip
    # the class × seed grid, the sneakers, the curves, the confusion matrix, a pyplot figure
    assert len(images) == 5, images
    printed = "".join(o.get("text", "") for c in code for o in c.outputs)
    assert "backend_inline" in printed and "FID" in printed and "Warning" not in printed
    assert (tmp_path / "runs" / "notebook" / "eval" / "metrics.json").is_file()


def test_importing_every_module_keeps_the_matplotlib_backend():
    code = (
        "import matplotlib; matplotlib.use('svg'); import pkgutil, importlib, fashiongan\n"
        "for m in pkgutil.walk_packages(fashiongan.__path__, 'fashiongan.'):\n"
        "    if not m.name.startswith(('fashiongan.serve', 'fashiongan.__main__')):\n"
        "        importlib.import_module(m.name)\n"
        "import fashiongan.reports.plots, fashiongan.reports.evaluation\n"
        "print(matplotlib.get_backend())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "svg"
