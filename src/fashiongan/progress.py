"""Progress bars that suit where they are drawn: a terminal gets tqdm's bar, a Jupyter notebook
its widget (tqdm.notebook, or a text bar without ipywidgets), and a redirected log none (the
bar's carriage returns would make a whole run one line)."""

import sys


def in_notebook() -> bool:
    """True inside a Jupyter kernel (IPython already imported and running a ZMQ shell)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def progress_bar(enabled: bool = True, **kwargs):
    """A tqdm bar (the notebook widget in Jupyter, as tqdm.auto picks). enabled=False: none;
    otherwise drawn on a terminal or in a notebook, never into a redirected stream."""
    if enabled and in_notebook():
        try:
            import ipywidgets  # noqa: F401 - tqdm.notebook's widget needs it
            from tqdm.notebook import tqdm
        except ImportError:  # a text bar, redrawn in place by the notebook; no warning
            from tqdm import tqdm
        return tqdm(disable=False, **kwargs)
    from tqdm import tqdm

    return tqdm(disable=True if not enabled else None, **kwargs)
