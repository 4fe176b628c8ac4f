"""The one error the procedural dance raises, shared by the music descriptor and the dance."""

from __future__ import annotations

from backend.errors import InputError


class ProceduralError(InputError):
    """Input the dance synthesiser cannot use; ``code`` is stable, the message is for people.

    code is ``"bad_beats"``, ``"bad_duration"``, ``"bad_fps"`` or ``"bad_descriptor"``.
    """
