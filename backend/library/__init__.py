"""The real-motion library: CMU dance capture imported once, cut at its kinematic beats.

``build`` turns BVH files into one npz (``library.MotionLibrary``); the ``graph``
generator loads it. See docs/motion_library.md.
"""
