"""Shared pytest fixtures, imported here so that every test file can use them.

The suite runs in two kinds of environment: the backend's (torch, no bpy) runs
everything but ``tests/blender``; a bpy environment (no torch) runs only
``tests/blender`` (see ``tests/blender/__main__.py``). Each skips what it cannot import.
"""

import importlib.util

if importlib.util.find_spec("torch") is not None:
    from tests.server_fixtures import backend_server  # noqa: F401

collect_ignore = [] if importlib.util.find_spec("bpy") is not None else ["blender"]
