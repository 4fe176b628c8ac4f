"""Add-on preferences: how to reach the backend, and the optional SMPL body file."""

from __future__ import annotations

import bpy

from .core.backend_link import LinkSettings


def addon_package() -> str:
    """The add-on's package name: 'blender_addon' from source, 'bl_ext.<repo>.choreo' installed."""
    return __package__ or "blender_addon"


def get_prefs(context: bpy.types.Context | None = None) -> "ChoreoPreferences":
    context = context or bpy.context
    return context.preferences.addons[addon_package()].preferences


class ChoreoPreferences(bpy.types.AddonPreferences):
    bl_idname = addon_package()

    backend_mode: bpy.props.EnumProperty(  # type: ignore[valid-type]
        name="Backend", default="LOCAL",
        items=[("LOCAL", "Start a local backend", "Blender starts the backend itself and stops it on exit"),
               ("CONNECT", "Connect to a running backend", "Use a backend started with 'choreo serve'")])
    python_path: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Python", subtype="FILE_PATH",
        description="A Python with choreo installed (e.g. the .venv's); runs 'python -m backend.cli serve'")
    backend_command: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Command", default="choreo serve",
        description="Command that starts the backend, used when no Python is set")
    device: bpy.props.EnumProperty(  # type: ignore[valid-type]
        name="Device", default="auto",
        items=[("auto", "Auto", "CUDA when there is a GPU, else the CPU"), ("cpu", "CPU", ""), ("cuda", "CUDA", "")])
    connection_file: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Connection file", subtype="FILE_PATH",
        description="The backend's connection file; empty: the newest one in the runtime folder")
    endpoint: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Endpoint", description="e.g. tcp://127.0.0.1:5555; used instead of a connection file when set")
    token: bpy.props.StringProperty(name="Token", subtype="PASSWORD")  # type: ignore[valid-type]
    startup_timeout: bpy.props.FloatProperty(  # type: ignore[valid-type]
        name="Start-up timeout (s)", default=180.0, min=5.0, max=3600.0)
    request_timeout: bpy.props.FloatProperty(  # type: ignore[valid-type]
        name="Answer timeout (s)", default=20.0, min=1.0, max=600.0,
        description="How long the backend may stay silent before it counts as gone")
    smpl_model_path: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="SMPL model file", subtype="FILE_PATH",
        description="Your own SMPL model (.npz or .pkl) for a real body mesh; empty: a stand-in body")

    def link_settings(self) -> LinkSettings:
        return LinkSettings(mode=self.backend_mode, connection_file=bpy.path.abspath(self.connection_file),
                            endpoint=self.endpoint, token=self.token, python=bpy.path.abspath(self.python_path),
                            command=self.backend_command, device=self.device,
                            startup_timeout=self.startup_timeout, request_timeout=self.request_timeout)

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        layout.prop(self, "backend_mode", expand=True)
        box = layout.box()
        if self.backend_mode == "LOCAL":
            box.prop(self, "python_path")
            box.prop(self, "backend_command")
            box.prop(self, "device")
            box.prop(self, "startup_timeout")
        else:
            box.prop(self, "connection_file")
            box.prop(self, "endpoint")
            box.prop(self, "token")
        layout.prop(self, "request_timeout")
        layout.prop(self, "smpl_model_path")


CLASSES = (ChoreoPreferences,)
