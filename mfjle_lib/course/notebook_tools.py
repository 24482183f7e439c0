"""`make notebooks`: re-execute lessons in place (kernel started in notebooks/), counts in order."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def execute_notebook(path: Path, timeout: int = 900) -> float:
    """Run every cell of one notebook in place and save its outputs; returns seconds taken."""
    # lazy: optional extra `dev` (nbformat, nbclient); the course imports this module without them
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    t0 = time.time()
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    drop_unused_widget_state(nb)
    nbformat.write(nb, path)
    return time.time() - t0


def drop_unused_widget_state(nb) -> None:
    """Remove saved widget state when no output shows a widget (closed progress bars leave ~70 KB)."""
    shown = any("application/vnd.jupyter.widget-view+json" in out.get("data", {})
                for cell in nb.cells for out in cell.get("outputs", []))
    if not shown:
        nb.metadata.pop("widgets", None)


def main(argv: list[str] | None = None) -> int:
    """CLI: `python -m mfjle_lib.course.notebook_tools execute NB...`."""
    parser = argparse.ArgumentParser(prog="python -m mfjle_lib.course.notebook_tools")
    parser.add_argument("action", choices=["execute"])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--timeout", type=int, default=900)
    args = parser.parse_args(argv)
    for nb in args.notebooks:
        seconds = execute_notebook(nb, args.timeout)
        print(f"{nb}: {seconds:.0f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
