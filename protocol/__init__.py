"""The choreo wire protocol (ZeroMQ multipart, JSON headers, raw array buffers) and a client.

This package imports neither torch nor bpy, so the Blender add-on and small
scripts can use it with just pyzmq and numpy. docs/protocol.md is the spec.

Its modules import each other relatively, so the same files work as the repository's
top-level ``protocol`` and as the copy the Blender extension carries inside its own
package (``bl_ext.<repository>.choreo.protocol``, see backend/addon_build.py).
"""

from .client import ChoreoClient
from .connection import (
    default_connection_file, find_connection_files, private_runtime_dir, read_connection_file,
    runtime_dir, scan_connection_files, write_connection_file,
)
from .errors import ERROR_CODES, ChoreoError, ChoreoTimeout, ProtocolError
from .job_stream import GenerationResult, JobStream, StreamedChunk
from .messages import (
    ALLOWED_DTYPES, DEFAULT_MAX_MESSAGE_BYTES, PROTOCOL_NAME, PROTOCOL_VERSION, REPLY_TYPES,
    REQUEST_TYPES, RESERVED_TYPES, SIGNATURE_SCHEME, Message, decode, encode, sign, verify_signature,
)

__all__ = [
    "ALLOWED_DTYPES", "DEFAULT_MAX_MESSAGE_BYTES", "ERROR_CODES", "PROTOCOL_NAME",
    "PROTOCOL_VERSION", "REPLY_TYPES", "REQUEST_TYPES", "RESERVED_TYPES", "SIGNATURE_SCHEME",
    "ChoreoClient", "ChoreoError", "ChoreoTimeout", "GenerationResult", "JobStream", "Message", "ProtocolError",
    "StreamedChunk", "decode", "default_connection_file", "encode", "find_connection_files",
    "private_runtime_dir", "read_connection_file", "runtime_dir", "scan_connection_files", "sign",
    "verify_signature", "write_connection_file",
]
