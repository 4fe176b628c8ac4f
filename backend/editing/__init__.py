"""Editing an existing dance: regenerate some frames and joints, keep the rest exactly.

* ``masks``: the one keep-mask every edit is described by, its presets (range,
  in-between, continuation, body part, keyframes), and the checks on an edit request;
* ``joins``: how regenerated frames are joined onto kept ones so that position and
  speed stay continuous at every border.

Both are pure numpy/torch, shared by the server, the CLI and the models. docs/editing.md
explains the modes.
"""
