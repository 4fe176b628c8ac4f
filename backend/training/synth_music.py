"""Synthesised songs with known beats: the music half of the procedural training set.

Why synthesise music at all: the bundled model is trained on procedural dance, and
that dance is timed from beat times. On a synthesised song the beats are not an
estimate, they are the grid the drums were placed on, so the training pairs are
exactly in time; and we can make as many songs as we like, across the tempo range
and the kinds of sound (loud/quiet, dark/bright, sparse/busy) that the dance style
is tied to.

A song is built bar by bar from:

* a ``Style``: a genre-like drum pattern, bass and chord rhythm, meter, swing and a
  tempo range (house, techno, hip-hop, pop, drum & bass, rock, metal, funk, latin,
  4/4 ballad, 3/4 waltz);
* a random sound palette (drum tunings and decays, oscillator shapes, filter
  cut-offs, how busy the hi-hats are, overall loudness);
* a random key, mode and chord progression, a repeating two-bar melody;
* a section plan (intro, groove, build, drop, breakdown), which switches layers on
  and off and changes the loudness, so the music has the energy changes that the
  dance has to follow.

Everything is vectorised numpy: each drum sound is made once per song and added at
its onsets, notes are short oscillator bursts, and each instrument track is
filtered once. A 20 s song renders in a fraction of a second.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal
from backend.errors import InputError


class SynthMusicError(InputError):
    """A request the synthesiser cannot honour; ``code`` is stable, the message is for people.

    code is ``"bad_tempo"``, ``"bad_duration"``, ``"bad_sample_rate"`` or ``"unknown_style"``.
    """


MIN_BPM: float = 40.0
MAX_BPM: float = 220.0


@dataclass(frozen=True)
class Style:
    """A genre-like recipe. Onsets are positions within one bar, in beats."""

    name: str
    bpm: tuple[float, float]
    beats_per_bar: int
    kick: tuple[float, ...]
    snare: tuple[float, ...]
    hat_step: float  # closed hi-hat every hat_step beats; 0 for none
    open_hat: tuple[float, ...]
    bass: tuple[float, ...]
    chords: tuple[float, ...]  # chord stabs; empty means one sustained pad per bar
    swing: tuple[float, float]  # range of how late the off-beat subdivisions come (fraction)
    perc: tuple[float, ...] = ()  # clave / wood block
    guitar: bool = False  # distorted power chords


_EIGHTHS = tuple(i * 0.5 for i in range(8))
STYLES: dict[str, Style] = {s.name: s for s in (
    Style("house", (118, 130), 4, (0, 1, 2, 3), (1, 3), 0.25, (0.5, 1.5, 2.5, 3.5),
          (0.5, 1.5, 2.5, 3.5), (0.75, 2.25), (0.0, 0.12)),
    Style("techno", (124, 142), 4, (0, 1, 2, 3), (1, 3), 0.5, (0.5, 1.5, 2.5, 3.5),
          (0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3.25, 3.75), (), (0.0, 0.05)),
    Style("hiphop", (80, 100), 4, (0, 0.75, 2.5), (1, 3), 0.5, (),
          (0, 0.75, 2.5), (), (0.15, 0.35)),
    Style("pop", (96, 125), 4, (0, 2, 2.5), (1, 3), 0.5, (),
          _EIGHTHS, (0, 1, 2, 3), (0.0, 0.08)),
    Style("dnb", (160, 180), 4, (0, 2.5), (1, 3), 0.25, (),
          (0, 2.5), (), (0.0, 0.05)),
    Style("rock", (100, 160), 4, (0, 1.5, 2), (1, 3), 0.5, (),
          _EIGHTHS, (), (0.0, 0.0), guitar=True),
    Style("metal", (140, 185), 4, _EIGHTHS, (1, 3), 0.5, (),
          _EIGHTHS, (), (0.0, 0.0), guitar=True),
    Style("funk", (100, 124), 4, (0, 1, 2, 3), (1, 3), 0.25, (0.5, 1.5, 2.5, 3.5),
          (0, 0.75, 1.5, 2, 2.75, 3.5), (0.25, 1.75, 2.5), (0.0, 0.15)),
    Style("latin", (86, 104), 4, (0, 1, 2, 3), (0.75, 1.5, 2.75, 3.5), 0.5, (),
          (0, 0.75, 1.5, 2, 2.75, 3.5), (0.5, 2.5), (0.0, 0.0), perc=(0, 0.75, 1.5, 2.5, 3)),
    Style("ballad", (60, 82), 4, (0, 2.5), (1, 3), 0.5, (),
          (0, 2), (), (0.0, 0.2)),
    Style("waltz", (60, 96), 3, (0,), (), 1.0, (),
          (0,), (1, 2), (0.0, 0.0)),
)}

SECTIONS: dict[str, dict[str, float]] = {
    # gain, then which layers play (1 on, 0 off)
    "intro": dict(gain=0.55, kick=0, snare=0, hats=1, bass=0, chords=1, lead=0, guitar=0, perc=1),
    "groove": dict(gain=0.8, kick=1, snare=1, hats=1, bass=1, chords=1, lead=0, guitar=1, perc=1),
    "build": dict(gain=0.85, kick=1, snare=1, hats=1, bass=1, chords=1, lead=0, guitar=0, perc=1),
    "drop": dict(gain=1.0, kick=1, snare=1, hats=1, bass=1, chords=1, lead=1, guitar=1, perc=1),
    "breakdown": dict(gain=0.42, kick=0, snare=0, hats=0, bass=0, chords=1, lead=1, guitar=0, perc=0),
}
_NEXT_SECTION: dict[str, tuple[str, ...]] = {
    "intro": ("groove", "build"),
    "groove": ("groove", "build", "drop", "breakdown"),
    "build": ("drop",),
    "drop": ("drop", "groove", "breakdown"),
    "breakdown": ("build", "groove"),
}

_SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}
_PROGRESSIONS = {  # scale degrees, one chord per bar
    "major": ((0, 4, 5, 3), (0, 3, 4, 4), (5, 3, 0, 4), (0, 5, 3, 4)),
    "minor": ((0, 5, 2, 6), (0, 3, 4, 0), (0, 6, 5, 6), (0, 5, 3, 4)),
}


@dataclass
class SynthSong:
    """A rendered song and the facts the dance needs about it."""

    samples: np.ndarray  # (N,) float32 mono in [-1, 1]
    sample_rate: int
    bpm: float
    beat_times: np.ndarray  # (B,) seconds; beat_times[0] is a downbeat
    beats_per_bar: int
    style: str
    sections: list[tuple[float, str]]  # (start time, section name), in order


def choose_style(bpm: float, rng: np.random.Generator) -> str:
    """A style whose tempo range holds ``bpm`` (5 BPM slack), else the nearest one."""
    fits = [s.name for s in STYLES.values() if s.bpm[0] - 5 <= bpm <= s.bpm[1] + 5]
    if fits:
        return str(rng.choice(fits))
    return min(STYLES.values(), key=lambda s: min(abs(bpm - s.bpm[0]), abs(bpm - s.bpm[1]))).name


def synthesize_song(bpm: float, seconds: float, rng: np.random.Generator,
                    sample_rate: int = 22050) -> tuple[np.ndarray, np.ndarray]:
    """Mono float32 samples of a new song and its true beat times (seconds)."""
    song = synthesize(bpm, seconds, rng, sample_rate)
    return song.samples, song.beat_times


def synthesize(bpm: float, seconds: float, rng: np.random.Generator, sample_rate: int = 22050,
               style: str | None = None) -> SynthSong:
    """Render a song; ``style`` None picks one that suits ``bpm`` (see ``choose_style``)."""
    if not (np.isfinite(bpm) and MIN_BPM <= bpm <= MAX_BPM):
        raise SynthMusicError("bad_tempo", f"bpm must be between {MIN_BPM:g} and {MAX_BPM:g}, got {bpm!r}")
    if not (np.isfinite(seconds) and 0.5 <= seconds <= 600):
        raise SynthMusicError("bad_duration", f"seconds must be between 0.5 and 600, got {seconds!r}")
    if int(sample_rate) != sample_rate or not 8000 <= sample_rate <= 96000:
        raise SynthMusicError("bad_sample_rate", f"sample_rate must be 8000..96000 Hz, got {sample_rate!r}")
    if style is None:
        style = choose_style(bpm, rng)
    if style not in STYLES:
        raise SynthMusicError("unknown_style", f"unknown style {style!r}; known: {', '.join(STYLES)}")
    return _Renderer(STYLES[style], float(bpm), float(seconds), rng, int(sample_rate)).render()


MIN_BEAT_S: float = 60.0 / MAX_BPM
MAX_BEAT_S: float = 60.0 / MIN_BPM


def synthesize_on_beats(beat_times: np.ndarray, seconds: float, rng: np.random.Generator,
                        sample_rate: int = 22050, style: str | None = None) -> SynthSong:
    """Render a song whose beats fall at ``beat_times`` (seconds), tempo drift and all.

    The song is laid out in beats, not seconds: every onset at ``p`` beats into bar
    ``b`` is placed by interpolating the grid at beat index ``b * beats_per_bar + p``
    (linearly between grid beats, so swing and sixteenths stretch with the local
    tempo). The grid is extended in front with its first spacing (as many beats as fit
    after 0 s) and after its last beat with its last spacing, so the music plays to
    ``seconds``; the first beat of the extended grid is a downbeat. Note lengths follow
    the median beat. The returned ``beat_times`` are the extended grid inside
    [0, seconds) (``beat_times[0]`` a downbeat, as ``synthesize``'s); ``bpm`` is 60 / the
    median spacing; ``style`` None picks one suiting that tempo.
    """
    grid = np.asarray(beat_times, dtype=np.float64).ravel()
    if not (np.isfinite(seconds) and 0.5 <= seconds <= 600):
        raise SynthMusicError("bad_duration", f"seconds must be between 0.5 and 600, got {seconds!r}")
    if len(grid) < 2 or not np.isfinite(grid).all():
        raise SynthMusicError("bad_tempo", "a beat grid needs at least two finite beat times")
    steps = np.diff(grid)
    if steps.min() < MIN_BEAT_S * 0.999 or steps.max() > MAX_BEAT_S * 1.001:
        raise SynthMusicError("bad_tempo", f"beat spacing must stay within {MIN_BEAT_S:.3f}-{MAX_BEAT_S:.2f} s "
                                           f"({MIN_BPM:g}-{MAX_BPM:g} BPM), got {steps.min():.3f}-{steps.max():.3f} s")
    if int(sample_rate) != sample_rate or not 8000 <= sample_rate <= 96000:
        raise SynthMusicError("bad_sample_rate", f"sample_rate must be 8000..96000 Hz, got {sample_rate!r}")
    bpm = 60.0 / float(np.median(steps))
    if style is None:
        style = choose_style(bpm, rng)
    if style not in STYLES:
        raise SynthMusicError("unknown_style", f"unknown style {style!r}; known: {', '.join(STYLES)}")
    before = int(np.floor(max(0.0, grid[0]) / steps[0] + 1e-9))  # beats in front, the first at >= 0 s
    after = int(np.ceil(max(0.0, seconds - grid[-1]) / steps[-1])) + 2 * STYLES[style].beats_per_bar + 1
    full = np.concatenate([grid[0] - steps[0] * np.arange(before, 0, -1), grid,
                           grid[-1] + steps[-1] * np.arange(1, after + 1)])
    return _Renderer(STYLES[style], bpm, float(seconds), rng, int(sample_rate), grid=full).render()


# ------------------------------------------------------------------ sounds


def _decay(n: int, sr: int, tau: float) -> np.ndarray:
    return np.exp(-np.arange(n) / (sr * tau))


def _filtered(x: np.ndarray, sr: int, kind: str, cutoff: float | tuple[float, float], order: int = 2) -> np.ndarray:
    nyquist = 0.5 * sr
    wn = np.clip(np.asarray(cutoff, dtype=float) / nyquist, 1e-4, 0.99)
    return signal.sosfilt(signal.butter(order, wn, btype=kind, output="sos"), x)


def _oscillator(shape: str, phase: np.ndarray) -> np.ndarray:
    """phase in cycles. Naive (aliasing) shapes; the tracks are low-passed afterwards."""
    frac = phase % 1.0
    if shape == "sine":
        return np.sin(2 * np.pi * phase)
    if shape == "saw":
        return 2.0 * frac - 1.0
    if shape == "square":
        return np.where(frac < 0.5, 1.0, -1.0)
    return 4.0 * np.abs(frac - 0.5) - 1.0  # triangle


def _midi_hz(note: float) -> float:
    return 440.0 * 2.0 ** ((note - 69.0) / 12.0)


@dataclass(frozen=True)
class _Palette:
    """What a song draws once and every bar plays with: key, mode, chords, sounds, melody."""

    scale: np.ndarray  # semitones of the mode's seven degrees
    key: int  # MIDI note of the bass root
    progression: tuple[int, ...]  # scale degree of each bar's chord, cycled
    hat_step: float
    pad_shape: str
    lead_shape: str
    bass_shape: str
    brightness: float  # 0..1, opens every tonal filter
    melody: list[list[tuple[float, int]]]  # per bar of two: (position in beats, step above the chord root)

    def degree(self, d: int) -> int:
        """Semitones above the key of scale degree ``d`` (past 6: the octaves above)."""
        return int(self.scale[d % 7] + 12 * (d // 7))


class _Renderer:
    """One song: palette, harmony and section plan drawn from ``rng``, then rendered."""

    def __init__(self, style: Style, bpm: float, seconds: float, rng: np.random.Generator, sr: int,
                 grid: np.ndarray | None = None):
        self.style, self.bpm, self.seconds, self.rng, self.sr = style, bpm, seconds, rng, sr
        self.n = int(round(seconds * sr))
        self.beat = 60.0 / bpm
        self.bar = self.beat * style.beats_per_bar
        self.grid = grid  # beat times (seconds) from a downbeat, or None for a steady tempo
        if grid is None:
            self.start = float(rng.uniform(0.05, 0.6 * self.beat))  # first downbeat
            self.num_bars = int(np.ceil((seconds - self.start) / self.bar)) + 1
        else:
            self.start = float(grid[0])
            self.num_bars = max(1, (int(np.searchsorted(grid, seconds)) + 1) // style.beats_per_bar + 1)
        self.swing = float(rng.uniform(*style.swing))
        self.tracks: dict[str, np.ndarray] = {}

    # -- timing

    def _time(self, bar: int, position: float) -> float:
        """Onset time of ``position`` beats into ``bar``, with swing on off-beat subdivisions."""
        frac = position % 1.0
        step = 0.5 if self.style.hat_step >= 0.5 else 0.25
        if abs(frac - 0.5) < 1e-6 and step == 0.5:
            position += self.swing * 0.5
        elif step == 0.25 and (abs(frac - 0.25) < 1e-6 or abs(frac - 0.75) < 1e-6):
            position += self.swing * 0.25
        if self.grid is not None:  # beat index -> time on the grid, linear between its beats
            g = bar * self.style.beats_per_bar + position
            i = int(np.clip(np.floor(g), 0, len(self.grid) - 2))
            return float(self.grid[i] + (g - i) * (self.grid[i + 1] - self.grid[i]))
        return self.start + bar * self.bar + position * self.beat

    def _add(self, track: str, sound: np.ndarray, time: float, gain: float) -> None:
        buf = self.tracks.setdefault(track, np.zeros(self.n))
        i = int(round((time + self.rng.normal(0.0, 0.002)) * self.sr))
        if i >= self.n or i + len(sound) <= 0:
            return
        lo = max(i, 0)
        hi = min(i + len(sound), self.n)
        buf[lo:hi] += gain * sound[lo - i:hi - i]

    # -- one-shot drums, made once per song

    def _make_drums(self) -> dict[str, np.ndarray]:
        rng, sr = self.rng, self.sr
        kick_n = int(rng.uniform(0.25, 0.45) * sr)
        t = np.arange(kick_n) / sr
        f_top, f_low = rng.uniform(110, 190), rng.uniform(42, 60)
        freq = f_low + (f_top - f_low) * np.exp(-t / rng.uniform(0.02, 0.05))
        kick = np.sin(2 * np.pi * np.cumsum(freq) / sr) * _decay(kick_n, sr, rng.uniform(0.08, 0.18))
        kick[: int(0.004 * sr)] += rng.normal(0, 0.4, int(0.004 * sr))

        snare_n = int(0.25 * sr)
        tone = np.sin(2 * np.pi * rng.uniform(160, 240) * np.arange(snare_n) / sr) * _decay(snare_n, sr, 0.04)
        noise = _filtered(rng.normal(0, 1, snare_n), sr, "highpass", rng.uniform(1200, 2500))
        snare = 0.5 * tone + 0.6 * noise * _decay(snare_n, sr, rng.uniform(0.05, 0.11))

        clap_n = int(0.2 * sr)
        bursts = np.zeros(clap_n)
        for k in range(3):
            i = int(k * 0.011 * sr)
            bursts[i:] += _decay(clap_n - i, sr, 0.008 if k < 2 else 0.06)
        clap = _filtered(rng.normal(0, 1, clap_n), sr, "bandpass", (900, 2800)) * bursts

        hat_cut = rng.uniform(5500, min(9500, 0.45 * sr))
        closed_n, open_n = int(0.06 * sr), int(0.35 * sr)
        closed = _filtered(rng.normal(0, 1, closed_n), sr, "highpass", hat_cut)
        closed *= _decay(closed_n, sr, rng.uniform(0.012, 0.03))
        opened = _filtered(rng.normal(0, 1, open_n), sr, "highpass", hat_cut)
        opened *= _decay(open_n, sr, rng.uniform(0.08, 0.16))
        crash_n = int(1.5 * sr)
        crash = _filtered(rng.normal(0, 1, crash_n), sr, "highpass", 3500) * _decay(crash_n, sr, 0.5)
        perc_n = int(0.08 * sr)
        perc = np.sin(2 * np.pi * rng.uniform(800, 1800) * np.arange(perc_n) / sr) * _decay(perc_n, sr, 0.02)
        return {"kick": kick, "snare": clap if rng.random() < 0.35 else snare, "roll": snare,
                "hat": closed, "open_hat": opened, "crash": crash, "perc": perc}

    # -- notes

    def _note(self, track: str, midi: float, time: float, duration: float, gain: float, shape: str,
              attack: float = 0.005, detune: float = 0.0) -> None:
        n = int((duration + 0.08) * self.sr)
        t = np.arange(n) / self.sr
        f = _midi_hz(midi)
        wave = _oscillator(shape, f * t + self.rng.random())
        if detune:
            wave = 0.5 * (wave + _oscillator(shape, f * (1 + detune) * t + self.rng.random()))
        env = np.minimum(1.0, t / max(attack, 1e-3))
        env *= np.where(t < duration, 1.0, np.exp(-(t - duration) / 0.02))
        self._add(track, wave * env, time, gain)

    # -- the song

    def _section_plan(self) -> list[str]:
        bars_per_section = 2 if self.bar > 2.2 else int(self.rng.choice([2, 4]))
        plan: list[str] = []
        current = str(self.rng.choice(["intro", "groove", "groove", "drop", "breakdown"]))
        while len(plan) < self.num_bars:
            plan += [current] * bars_per_section
            current = str(self.rng.choice(_NEXT_SECTION[current]))
        return plan[: self.num_bars]

    def render(self) -> SynthSong:
        drums = self._make_drums()
        plan = self._section_plan()
        palette = self._palette()
        for bar, section in enumerate(plan):
            self._play_drums(bar, section, plan, drums, palette.hat_step)
            self._play_notes(bar, section, palette)
        samples = self._master(self._mix(palette.brightness))

        if self.grid is None:
            beat_times = self.start + self.beat * np.arange(int(np.ceil((self.seconds - self.start) / self.beat)))
        else:
            beat_times = self.grid
        beat_times = beat_times[beat_times < self.seconds]
        sections = [(self._time(b, 0), s) for b, s in enumerate(plan) if b == 0 or plan[b - 1] != s]
        return SynthSong(samples=samples, sample_rate=self.sr, bpm=self.bpm, beat_times=beat_times,
                         beats_per_bar=self.style.beats_per_bar, style=self.style.name,
                         sections=[(max(0.0, t), s) for t, s in sections if t < self.seconds])

    def _palette(self) -> _Palette:
        """Key, mode, chords, sounds and melody of the song, drawn in this order from ``rng``."""
        rng = self.rng
        mode = str(rng.choice(["major", "minor"]))
        scale = np.array(_SCALES[mode])
        key = int(rng.integers(40, 52))  # bass root, E2..D#3
        progression = _PROGRESSIONS[mode][int(rng.integers(len(_PROGRESSIONS[mode])))]
        hat_step = self.style.hat_step
        if hat_step and rng.random() < 0.3:  # busier or sparser hats than the style's default
            hat_step = float(rng.choice([0.25, 0.5, 1.0]))
        pad_shape = str(rng.choice(["saw", "square", "triangle", "sine"]))
        lead_shape = str(rng.choice(["square", "saw", "triangle", "sine"]))
        bass_shape = str(rng.choice(["saw", "square", "sine"]))
        brightness = float(rng.uniform(0.0, 1.0))  # opens every tonal filter
        melody = self._motif(scale)
        return _Palette(scale, key, progression, hat_step, pad_shape, lead_shape, bass_shape, brightness, melody)

    def _play_drums(self, bar: int, section: str, plan: list[str], drums: dict[str, np.ndarray],
                    hat_step: float) -> None:
        """The bar's drum hits: kick, snare, a roll at the end of a build, a crash on a
        drop, hats and percussion, as the section's layers allow."""
        rng, style = self.rng, self.style
        layers = SECTIONS[section]
        gain = layers["gain"]
        if layers["kick"]:
            for p in style.kick:
                self._add("drums", drums["kick"], self._time(bar, p), gain * rng.uniform(0.9, 1.0))
        if layers["snare"]:
            for p in style.snare:
                self._add("drums", drums["snare"], self._time(bar, p), 0.7 * gain * rng.uniform(0.85, 1.0))
        if section == "build" and (bar + 1 == len(plan) or plan[bar + 1] != "build"):
            steps = int(style.beats_per_bar * 4)
            for k in range(steps):
                self._add("drums", drums["roll"], self._time(bar, k * 0.25), 0.2 + 0.5 * k / steps)
        if section == "drop" and (bar == 0 or plan[bar - 1] != "drop"):
            self._add("drums", drums["crash"], self._time(bar, 0), 0.5)
        if layers["hats"] and hat_step:
            for p in np.arange(0.0, style.beats_per_bar, hat_step):
                accent = 1.0 if p % 1.0 == 0 else 0.7
                level = 0.35 * gain * accent * rng.uniform(0.8, 1.0)
                self._add("drums", drums["hat"], self._time(bar, float(p)), level)
            for p in style.open_hat:
                self._add("drums", drums["open_hat"], self._time(bar, p), 0.3 * gain)
        if layers["perc"]:
            for p in style.perc:
                self._add("drums", drums["perc"], self._time(bar, p), 0.3 * gain)

    def _play_notes(self, bar: int, section: str, palette: _Palette) -> None:
        """The bar's bass line, chords, power chords and melody, on the bar's chord."""
        rng, style = self.rng, self.style
        layers = SECTIONS[section]
        gain = layers["gain"]
        key = palette.key
        chord_root = palette.progression[bar % len(palette.progression)]
        triad = [palette.degree(chord_root + k) for k in (0, 2, 4)]
        if layers["bass"]:
            onsets = style.bass
            for i, p in enumerate(onsets):
                end = onsets[i + 1] if i + 1 < len(onsets) else style.beats_per_bar
                octave = 12 if (style.name == "funk" and i % 2) else 0
                self._note("bass", key + triad[0] + octave, self._time(bar, p),
                           0.85 * (end - p) * self.beat, 0.55 * gain, palette.bass_shape)
        if layers["chords"]:
            voicing = [key + 12 + n for n in triad] + ([key + 24 + triad[0]] if rng.random() < 0.5 else [])
            if style.chords:
                for p in style.chords:
                    for note in voicing:
                        self._note("chords", note, self._time(bar, p), 0.4 * self.beat, 0.16 * gain,
                                   palette.pad_shape)
            else:
                for note in voicing:
                    self._note("chords", note, self._time(bar, 0), self.bar, 0.12 * gain, palette.pad_shape,
                               attack=0.25 * self.bar, detune=0.004)
        if layers["guitar"] and style.guitar:
            power = [key + 12 + triad[0], key + 19 + triad[0]]
            for p in _EIGHTHS[: 2 * style.beats_per_bar]:
                for note in power:
                    self._note("guitar", note, self._time(bar, p), 0.45 * self.beat, 0.35 * gain, "saw")
        if layers["lead"]:
            for p, step in palette.melody[bar % 2]:
                self._note("lead", key + 24 + palette.degree(chord_root + step), self._time(bar, p),
                           0.45 * self.beat, 0.2 * gain, palette.lead_shape)

    def _mix(self, brightness: float) -> np.ndarray:
        """The tracks summed, each tonal one low-passed (more open the brighter the song), the guitar distorted."""
        sr = self.sr
        mix = np.zeros(self.n)
        cut = 1.0 + brightness
        filters = {"bass": ("lowpass", 250 * cut), "chords": ("lowpass", 1500 * cut ** 2),
                   "lead": ("lowpass", 2500 * cut ** 2), "guitar": ("lowpass", 1800 * cut ** 2)}
        for name, track in self.tracks.items():
            if name == "guitar":
                track = np.tanh(4.0 * track)
            if name in filters:
                kind, freq = filters[name]
                track = _filtered(track, sr, kind, min(freq, 0.45 * sr))
            mix += track
        return mix

    def _motif(self, scale: np.ndarray) -> list[list[tuple[float, int]]]:
        """A two-bar melody: (position in beats, scale step above the chord root) per bar."""
        bars = []
        step = 2
        for _ in range(2):
            notes = []
            for p in np.arange(0.0, self.style.beats_per_bar, 0.5):
                if self.rng.random() < (0.7 if p % 1.0 == 0 else 0.35):
                    step = int(np.clip(step + self.rng.integers(-2, 3), 0, 9))
                    notes.append((float(p), step))
            bars.append(notes)
        return bars

    def _master(self, mix: np.ndarray) -> np.ndarray:
        """Normalise loudness (a random target, so songs differ in level) and limit peaks."""
        rms = float(np.sqrt(np.mean(mix**2))) + 1e-9
        target = 10.0 ** (self.rng.uniform(-19.0, -8.0) / 20.0)
        y = mix * (target / rms)
        y = 0.97 * np.tanh(y / 0.97)
        return y.astype(np.float32)
