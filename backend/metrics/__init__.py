"""Measures of generated dance (the full metric library grows here)."""
