"""A script run in a fresh Python where an optional package cannot be imported, as a user without
it has it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def output_without(package: str | tuple[str, ...], script: str) -> list[str]:
    """The lines `script` prints in a new interpreter (in the repository) without `package` (or
    without any of several)."""
    packages = (package,) if isinstance(package, str) else package
    code = "import sys\n" + "".join(f"sys.modules[{p!r}] = None\n" for p in packages) + script
    run = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    return run.stdout.splitlines()
