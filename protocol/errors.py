"""The error codes of the choreo protocol and the exceptions that carry them.

Codes are part of the wire format: the Blender add-on and scripts branch on them,
so they never change meaning within a major version. The human message next to a
code may change at any time and is only for people.
"""

from __future__ import annotations

ERROR_CODES: dict[str, str] = {
    "unsupported_version": "The message's protocol major version is not one this peer speaks.",
    "bad_message": "The message is malformed: header not a JSON object, a field missing or "
                   "of the wrong type, a buffer dtype not allowed, extra frames.",
    "truncated_message": "Fewer buffer frames than the header lists, or a buffer shorter "
                         "than its dtype and shape say.",
    "message_too_large": "The message (or its header) is larger than the peer accepts.",
    "unknown_type": "The message type is not a request this server handles.",
    "unknown_model": "The requested model is not loaded on this backend.",
    "bad_option": "A generation parameter (seed, steps, guidance, an option) is of the "
                  "wrong type, unknown, or out of range.",
    "audio_undecodable": "The audio bytes could not be decoded as a sound file.",
    "audio_empty": "The audio decoded to no samples (or no bytes were sent).",
    "audio_too_long": "The audio is longer than the backend's max_audio_seconds.",
    "bad_range": "start/seconds do not describe a non-empty span inside the song; or an edit's "
                 "motion runs past the song's end, or a keyframe lies outside the motion.",
    "bad_motion": "An inpaint request's motion is malformed: wrong shapes, a NaN or infinity, "
                  "contacts for another model, or a kept rotation that is not a unit quaternion.",
    "bad_mask": "An inpaint request's keep mask has the wrong shape or type, or regenerates nothing; "
                "or its keyframes repeat a frame.",
    "audio_not_cached": "An inpaint request named audio by audio_hash that the backend no longer "
                        "holds; send the audio bytes again.",
    "unsupported_edit": "The model cannot honour this edit (for example an autoregressive model "
                        "asked to keep some joints while it changes others in the same frames).",
    "queue_full": "The job queue is full; try again when a job finishes.",
    "unknown_job": "No queued or running job of this client has that job_id.",
    "client_timeout": "The backend heard nothing from this client (no request, no ping) for its "
                      "client_timeout_s and stopped the client's job; the job sends nothing more.",
    "unauthorized": "The request lacks the server's auth token, or carries a wrong one.",
    "internal": "The backend failed while handling the request; it keeps serving.",
}
"""Every error code a choreo server may send, with what it means (docs/protocol.md)."""


class ChoreoError(Exception):
    """An error with a stable machine-readable ``code`` and a message for people.

    Raised by the client when the backend answers with ``error``, and used inside
    the server to turn a failed check into an ``error`` reply.
    """

    def __init__(self, code: str, message: str, *, reply_to: str | None = None,
                 job_id: str | None = None) -> None:
        super().__init__(f"[{code}] {message}")
        self.code = code
        self.message = message
        self.reply_to = reply_to
        self.job_id = job_id


class ProtocolError(ChoreoError):
    """A message that breaks the wire format (bad header, truncated frames, too large)."""


class ChoreoTimeout(ChoreoError):
    """The backend stopped answering (client side only; code ``"timeout"``, never sent)."""

    def __init__(self, message: str) -> None:
        super().__init__("timeout", message)
