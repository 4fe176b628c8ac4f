"""Analyses of recent uploads, kept by content hash so a song is analysed once.

A user typically generates several dances for one song (new seeds, edited spans),
and every request carries the same file. Keying on the sha256 of the file's bytes
means a re-upload under another name still hits, and an edited file never does.

The server may serve requests from several threads. One lock guards the table;
a per-hash lock makes a second request for a song that is still being analysed
wait for that analysis instead of repeating it, while other songs go ahead.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

from backend.music.audio import decode_audio
from backend.music.features import FEATURE_SAMPLE_RATE, MusicAnalysis, analyse_music


def content_hash(data: bytes) -> str:
    """sha256 of the bytes, as 64 hex digits: the identity of an uploaded file."""
    return hashlib.sha256(data).hexdigest()


class MusicCache:
    """Thread-safe least-recently-used store of MusicAnalysis by content hash.

    max_entries bounds the table (an analysis of a 3-minute song is ~0.8 MB of
    features); max_seconds is the longest audio ``analyse_bytes`` accepts.
    Failed analyses (AudioError) are not stored; the error reaches every caller.
    """

    def __init__(self, max_entries: int = 16, max_seconds: float = 600.0) -> None:
        if int(max_entries) != max_entries or max_entries < 1:
            raise ValueError(f"max_entries must be a positive integer, got {max_entries!r}")
        if not max_seconds > 0:
            raise ValueError(f"max_seconds must be positive, got {max_seconds!r}")
        self.max_entries = int(max_entries)
        self.max_seconds = float(max_seconds)
        self._entries: OrderedDict[str, MusicAnalysis] = OrderedDict()
        self._lock = threading.Lock()
        self._in_flight: dict[str, threading.Lock] = {}

    def get(self, content_hash: str) -> MusicAnalysis | None:
        """The stored analysis for this hash (now the most recently used), or None."""
        with self._lock:
            analysis = self._entries.get(content_hash)
            if analysis is not None:
                self._entries.move_to_end(content_hash)
            return analysis

    def analyse_bytes(self, data: bytes) -> MusicAnalysis:
        """Decode (within max_seconds) and analyse an audio file, or return the stored result.

        Raises AudioError for audio that cannot be used.
        """
        key = content_hash(data)
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
            key_lock = self._in_flight.setdefault(key, threading.Lock())
        with key_lock:
            found = self.get(key)  # analysed by another thread while we waited
            if found is not None:
                return found
            try:
                samples = decode_audio(data, FEATURE_SAMPLE_RATE, max_seconds=self.max_seconds)
                analysis = analyse_music(samples, content_hash=key)
                with self._lock:
                    self._entries[key] = analysis
                    while len(self._entries) > self.max_entries:
                        self._entries.popitem(last=False)
            finally:
                with self._lock:
                    self._in_flight.pop(key, None)
            return analysis

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __contains__(self, content_hash: object) -> bool:
        with self._lock:
            return content_hash in self._entries
