"""Tests that run inside real headless Blender (the ``bpy`` wheel), against a real backend."""
