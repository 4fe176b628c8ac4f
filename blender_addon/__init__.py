"""Choreo's Blender add-on (panel, operators, keyframe writing, retargeting).

It is a thin Blender adapter over ``protocol.client``: it sends audio to a backend
process and writes the streamed motion as keyframes. The backend and protocol come
first; the add-on itself lands with its own issue. Nothing here imports torch.
"""
