"""Benchmarks: scripts that print figures (run as `python -m benchmarks.NAME`)."""

from __future__ import annotations

import argparse


def arguments(doc: str | None) -> argparse.ArgumentParser:
    """A benchmark's argument parser, its module docstring (how to run it, what it prints) as help."""
    return argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
