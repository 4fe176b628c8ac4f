"""Choreo for Blender: pick a song, press Generate, watch a dance arrive as keyframes.

The add-on talks to a separate backend process over ZeroMQ (its ``.protocol``
package, see ``_protocol_package``), never to torch directly. Its pure-Python core (``core/``: backend link, streams, edit plans,
quaternion maths, retargeting, FBX presets) has no bpy in it; the modules beside it
are thin Blender adapters. Nothing here imports bpy at module level, so the core
can be imported and tested outside Blender.
"""

from __future__ import annotations

def _protocol_package() -> None:
    """Make ``<this add-on>.protocol`` the wire protocol package, whichever way the add-on runs.

    The extension zip carries the package inside the add-on (backend/addon_build.py), so
    Blender imports it as ``bl_ext.<repository>.choreo.protocol`` and no other extension's
    top-level ``protocol`` can clash with it: the add-on's modules import it relatively
    (``from .protocol.client import ...``). Run from a checkout (the tests, a developer's
    linked add-on) there is no copy inside; the add-on's name for it then points at the
    repository's top-level ``protocol``, the one the backend uses, module by module, so
    that both names are the same module objects (one ``ChoreoError`` class, not two).
    """
    import importlib
    import importlib.util
    import pkgutil
    import sys

    name = f"{__name__}.protocol"
    if name in sys.modules or importlib.util.find_spec(name) is not None:
        return  # the extension's own copy
    package = importlib.import_module("protocol")
    sys.modules[name] = package
    for module in pkgutil.iter_modules(package.__path__):
        sys.modules[f"{name}.{module.name}"] = importlib.import_module(f"protocol.{module.name}")


_protocol_package()

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
