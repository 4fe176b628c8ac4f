"""Choreo for Blender: pick a song, press Generate, watch a dance arrive as keyframes.

The add-on talks to a separate backend process over ZeroMQ (``protocol``), never to
torch directly. Its pure-Python core (``core/``: backend link, streams, edit plans,
quaternion maths, retargeting, FBX presets) has no bpy in it; the modules beside it
are thin Blender adapters. Nothing here imports bpy at module level, so the core
can be imported and tested outside Blender.
"""

from __future__ import annotations

_MODULES = ("properties", "preferences", "operators", "retarget_ops", "export_ops", "panel")


def _loaded() -> list:
    import importlib

    out = []
    for name in _MODULES:
        try:
            out.append(importlib.import_module(f".{name}", __package__))
        except ModuleNotFoundError as exc:  # a part not built yet must not stop the rest
            if exc.name != f"{__package__}.{name}":
                raise
    return out


def register() -> None:
    import bpy

    for module in _loaded():
        if hasattr(module, "register"):
            module.register()
        else:
            for cls in module.CLASSES:
                bpy.utils.register_class(cls)
    from . import exit_handler
    exit_handler.register()


def unregister() -> None:
    import bpy

    from . import exit_handler, state
    exit_handler.unregister()
    state.LINK.disconnect()
    for module in reversed(_loaded()):
        if hasattr(module, "unregister"):
            module.unregister()
        else:
            for cls in reversed(module.CLASSES):
                bpy.utils.unregister_class(cls)
