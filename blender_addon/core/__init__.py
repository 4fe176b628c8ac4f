"""The add-on's pure-Python core: no bpy, so it is tested and reasoned about on its own.

The Blender-facing modules one level up are thin adapters over these.
"""
