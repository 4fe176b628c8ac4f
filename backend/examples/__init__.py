"""The bundled example files, found by path wherever the package is installed.

Why a module: the command line (``choreo demo``), the tests and the benchmarks all
dance to the example song, and each names it from here. Before, the path lived in
``backend/cli.py``, so the benchmarks imported the command line that runs them.
"""

from __future__ import annotations

from pathlib import Path

EXAMPLE_SONG: Path = Path(__file__).resolve().parent / "metal_madness_excerpt.ogg"
"""30 s of "Metal madness" by Sectoid, 150 BPM (README.md beside it; its licence is COPYRIGHT.sectoid)."""
