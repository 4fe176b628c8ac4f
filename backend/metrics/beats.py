"""How well a dance's movement beats meet its music's beats, in the forms the literature uses.

A *motion beat* (kinematic beat) is a moment where the body slows to a local minimum of
its mean joint speed: dancers hit a beat by stopping on it. Each form below scores every
beat of one kind by exp(-d^2 / (2 sigma^2)), d being the distance in frames to the
nearest beat of the other kind, and averages. They differ in which side is averaged and
in how motion beats are found, and their published numbers differ accordingly, so each
has its own name; ``BEAT_ALIGN_FORMS`` lists them.

* ``"music"`` (the default) -- Bailando (Li Siyao et al., CVPR 2022), reference code
  ``lisiyao21/Bailando`` ``utils/metrics_new.py`` / ``utils/beat_align_score.py``
  (``calc_db``, ``BA``): averaged over *music* beats, motion beats from a Gaussian-
  smoothed speed. It asks "was every musical beat danced?", so a restless dance that
  stops every few frames cannot score by chance on the motion side.
* ``"motion"`` -- FACT (Li et al., "AI Choreographer", ICCV 2021), reference code
  ``google/aistplusplus_api`` / ``google-research/mint`` ``calculate_beat_scores.py``:
  averaged over *motion* beats; motion beats from the unsmoothed speed, a minimum
  having to be the lowest value within ``order`` frames on each side.
* ``"popdg"`` -- POPDG (Luo et al., CVPR 2024), ``Luke-Luo1/POPDG``
  ``eval/calculate_beat_scores.py``: FACT's code run unchanged on 30 fps motion, so
  its neighbourhood of 10 frames (meant for 60 fps) spans twice the time, which drops
  minor stops closer than 1/3 s to a deeper one; it also scores only the first 300
  frames (10 s) and rounds music beats to frames. Implemented as they do it.

Conventions: positions are (T, J, 3) metres (or (T, J, 2) image keypoints), frame f at
f / fps seconds; music beats come as times in seconds and are converted with the fps.
Music beats outside the motion's frames [0, T-1] are ignored (nothing was danced there).
No music beat or no motion beat gives 0.0.

Frame counts are stated at 30 fps (our rate) and scaled by fps / 30, so a constant keeps
its duration at other rates. Bailando and FACT worked at 60 fps; where we translate one
of their frame counts, the comment says so. The kernel width is not translated: sigma =
3 frames at 30 fps (0.1 s), as POPDG scores at 30 fps and as ``basic.beat_alignment``
always did; FACT and Bailando used 3 frames at 60 fps (0.05 s), so their published
values are not comparable one to one (a looser kernel scores higher).

Speeds for the "music" and "motion" forms are central differences, speed at frame f from
frames f-1 and f+1, so that a stop at frame f is found at frame f. The references use a
one-sided difference, which puts each beat half a frame early (Bailando) or late (FACT).

``mm_align_2d`` is DabFusion's 2D motion-music alignment (Wang et al., "Dance Any Beat",
arXiv:2405.09266, 2024): the same score on 2D keypoints, here obtained by projecting the
joints with a pinhole ``Camera``. Their exact formula was not available to us; see its
docstring for the definition we use.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

REFERENCE_FPS: float = 30.0
"""The rate at which the frame counts below are stated."""

BEAT_SIGMA_FRAMES_AT_30FPS: float = 3.0
"""Kernel width sigma of exp(-d^2 / 2 sigma^2): the 3 frames of FACT, Bailando and POPDG,
kept as 3 frames at 30 fps (see the module docstring)."""

BAILANDO_SMOOTH_FRAMES_AT_30FPS: float = 2.5
"""Gaussian smoothing (sigma) of the speed before finding minima: Bailando's
``gaussian_filter(kinetic_vel, 5)`` at 60 fps, i.e. 2.5 frames (83 ms) at 30 fps."""

FACT_ORDER_FRAMES_AT_30FPS: int = 5
"""FACT's ``argrelextrema(..., order=10)`` "10 for 60FPS", i.e. 5 frames (167 ms) at 30 fps."""

POPDG_ORDER_FRAMES_AT_30FPS: int = 10
"""POPDG applies FACT's order=10 to 30 fps motion: 10 frames (333 ms) at 30 fps."""

POPDG_SCORED_FRAMES_AT_30FPS: int = 300
"""POPDG scores ``keypoints[:300]``: the first 10 s."""


def _frames(frames_at_30fps: float, fps: float) -> float:
    return frames_at_30fps * fps / REFERENCE_FPS


def _check_fps(fps: float) -> float:
    fps = float(fps)
    if not np.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps must be a positive number, got {fps}")
    return fps


def _check_positions(positions: np.ndarray, dims: tuple[int, ...] = (2, 3)) -> np.ndarray:
    """Positions as float64 (T, J, D), D in ``dims``; anything else is a caller's bug."""
    p = np.asarray(positions, dtype=np.float64)
    if p.ndim != 3 or p.shape[-1] not in dims or p.shape[1] == 0:
        want = " or ".join(f"(T, J, {d})" for d in dims)
        raise ValueError(f"positions must be {want}, got shape {p.shape}")
    if not np.isfinite(p).all():
        raise ValueError("positions contain NaN or infinite values")
    return p


def _check_beat_times(music_beat_times: np.ndarray) -> np.ndarray:
    t = np.asarray(music_beat_times, dtype=np.float64)
    if t.ndim != 1:
        raise ValueError(f"music_beat_times must be a 1-D array of seconds, got shape {t.shape}")
    if not np.isfinite(t).all():
        raise ValueError("music_beat_times contain NaN or infinite values")
    return t


def _music_frames(music_beat_times: np.ndarray, fps: float, num_frames: int) -> np.ndarray:
    """Music beats in (fractional) frames, keeping those inside the motion's frames."""
    frames = _check_beat_times(music_beat_times) * fps
    return frames[(frames >= 0) & (frames <= num_frames - 1)]


def _strict_minima(signal: np.ndarray, order: int) -> np.ndarray:
    """Indices lower than every sample within ``order`` on each side.

    Samples past the ends count as copies of the end sample, so the first and last
    frames are never minima and a flat stretch (a body standing still) gives none.
    """
    n = len(signal)
    if n < 3:
        return np.zeros(0, dtype=np.int64)
    padded = np.pad(signal, order, mode="edge")
    centre = padded[order:order + n]
    lowest = np.ones(n, dtype=bool)
    for shift in range(1, order + 1):
        lowest &= centre < padded[order - shift:order - shift + n]
        lowest &= centre < padded[order + shift:order + shift + n]
    return np.flatnonzero(lowest)


def mean_joint_speed(positions: np.ndarray) -> np.ndarray:
    """(T,) mean over joints of each frame's speed (units per frame), central differences."""
    p = _check_positions(positions)
    if len(p) < 2:
        return np.zeros(len(p))
    return np.linalg.norm(np.gradient(p, axis=0), axis=-1).mean(axis=-1)


def motion_beats(
    positions: np.ndarray,
    smooth_sigma_frames: float = BAILANDO_SMOOTH_FRAMES_AT_30FPS,
    order: int = 1,
) -> np.ndarray:
    """Frame indices of the motion beats: local minima of the smoothed mean joint speed.

    positions: (T, J, 3) or (T, J, 2). smooth_sigma_frames: Gaussian sigma in this clip's
    frames (0 = no smoothing); the default is Bailando's, for 30 fps. order: a minimum
    must be strictly below every value within ``order`` frames on each side (FACT's
    argrelextrema order; 1 = an ordinary local minimum).
    """
    if order < 1:
        raise ValueError(f"order must be at least 1, got {order}")
    speed = mean_joint_speed(positions)
    if smooth_sigma_frames > 0 and len(speed) > 1:
        speed = gaussian_filter1d(speed, float(smooth_sigma_frames))
    return _strict_minima(speed, int(order))


def _nearest_score(frames: np.ndarray, targets: np.ndarray, sigma: float) -> float:
    """Mean over ``frames`` of exp(-d^2 / 2 sigma^2), d = distance to the nearest target."""
    if len(frames) == 0 or len(targets) == 0:
        return 0.0
    d = np.abs(np.asarray(frames, np.float64)[:, None] - np.asarray(targets, np.float64)[None, :])
    return float(np.mean(np.exp(-d.min(axis=1) ** 2 / (2.0 * sigma**2))))


def beat_align_music(
    positions: np.ndarray, music_beat_times: np.ndarray, fps: float = 30.0, *,
    sigma_frames_at_30fps: float = BEAT_SIGMA_FRAMES_AT_30FPS,
    smooth_frames_at_30fps: float = BAILANDO_SMOOTH_FRAMES_AT_30FPS,
) -> float:
    """Bailando's beat alignment, averaged over music beats, in [0, 1].

    Each music beat inside the clip scores exp(-d^2 / 2 sigma^2), d = frames to the
    nearest motion beat (minima of the Gaussian-smoothed mean joint speed). Music beats
    are not rounded to frames. Works on (T, J, 3) and (T, J, 2).
    """
    fps = _check_fps(fps)
    p = _check_positions(positions)
    music = _music_frames(music_beat_times, fps, len(p))
    found = motion_beats(p, _frames(smooth_frames_at_30fps, fps))
    return _nearest_score(music, found, _frames(sigma_frames_at_30fps, fps))


def beat_align_motion(
    positions: np.ndarray, music_beat_times: np.ndarray, fps: float = 30.0, *,
    sigma_frames_at_30fps: float = BEAT_SIGMA_FRAMES_AT_30FPS,
    order_frames_at_30fps: int = FACT_ORDER_FRAMES_AT_30FPS,
) -> float:
    """FACT's beat alignment, averaged over motion beats, in [0, 1].

    Motion beats: minima of the unsmoothed mean joint speed that are the lowest within
    ``order`` frames each side (FACT's 10 at 60 fps = 5 at 30 fps). Each scores
    exp(-d^2 / 2 sigma^2), d = frames to the nearest music beat inside the clip. A dance
    that stops on every beat and also in between scores lower here than in the "music"
    form, which does not see the extra stops.
    """
    fps = _check_fps(fps)
    p = _check_positions(positions)
    music = _music_frames(music_beat_times, fps, len(p))
    order = max(1, round(_frames(order_frames_at_30fps, fps)))
    found = motion_beats(p, smooth_sigma_frames=0.0, order=order)
    return _nearest_score(found, music, _frames(sigma_frames_at_30fps, fps))


def beat_align_popdg(
    positions: np.ndarray, music_beat_times: np.ndarray, fps: float = 30.0, *,
    sigma_frames_at_30fps: float = BEAT_SIGMA_FRAMES_AT_30FPS,
) -> float:
    """POPDG's beat alignment (``eval/calculate_beat_scores.py``), in [0, 1].

    What POPDG does, and so we do: only the first 300 frames (10 s at 30 fps) are
    searched for motion beats; the speed envelope is the sum over joints of each joint's
    step from the previous frame (0 at frame 0), unsmoothed; a motion beat must be
    strictly below every value within 10 frames (at 30 fps) on each side; music beats
    are rounded to frames; the score averages over motion beats, as FACT's does. Their
    script divides the sum over clips by a fixed 24 (their number of test clips); that
    is a data-set mean, not part of the per-clip score. Their script fails on a clip
    without music beats; we return 0.0 as for the other forms.
    """
    fps = _check_fps(fps)
    p = _check_positions(positions)
    music = np.rint(_music_frames(music_beat_times, fps, len(p)))
    head = p[:max(1, round(_frames(POPDG_SCORED_FRAMES_AT_30FPS, fps)))]
    envelope = np.zeros(len(head))
    envelope[1:] = np.linalg.norm(np.diff(head, axis=0), axis=-1).sum(axis=-1)
    found = _strict_minima(envelope, max(1, round(_frames(POPDG_ORDER_FRAMES_AT_30FPS, fps))))
    return _nearest_score(found, music, _frames(sigma_frames_at_30fps, fps))


BeatAlignFn = Callable[..., float]

BEAT_ALIGN_FORMS: dict[str, BeatAlignFn] = {
    "music": beat_align_music,
    "motion": beat_align_motion,
    "popdg": beat_align_popdg,
}
"""The named forms; each takes (positions, music_beat_times, fps) and returns [0, 1]."""

DEFAULT_BEAT_ALIGN: str = "music"
"""Bailando's form: the one most recent work reports, and it cannot be raised by
stopping often (only music beats are scored)."""


def beat_align(positions: np.ndarray, music_beat_times: np.ndarray, fps: float = 30.0,
               form: str = DEFAULT_BEAT_ALIGN) -> float:
    """Beat alignment in the named form (see ``BEAT_ALIGN_FORMS``)."""
    if form not in BEAT_ALIGN_FORMS:
        raise ValueError(f"unknown beat-alignment form {form!r}; known: {sorted(BEAT_ALIGN_FORMS)}")
    return BEAT_ALIGN_FORMS[form](positions, music_beat_times, fps)


@dataclass(frozen=True)
class Camera:
    """A pinhole camera in our Z-up world, to see a dance as a video would.

    position / look_at: metres; the image's up is world +Z, so the camera must not look
    straight up or down. focal_length_px: focal length in pixels. image_size: (width,
    height) in pixels; the principal point is the image centre; u runs right, v down.
    The default stands 4.5 m in front of our dancer (who faces -Y) at chest height,
    with a 1920x1080 image: the dancer's left (+X) appears on the image's right.
    """

    position: tuple[float, float, float] = (0.0, -4.5, 1.0)
    look_at: tuple[float, float, float] = (0.0, 0.0, 1.0)
    focal_length_px: float = 1000.0
    image_size: tuple[int, int] = (1920, 1080)

    def __post_init__(self) -> None:
        if not self.focal_length_px > 0:
            raise ValueError(f"focal_length_px must be positive, got {self.focal_length_px}")
        if len(self.image_size) != 2 or min(self.image_size) <= 0:
            raise ValueError(f"image_size must be (width, height) > 0, got {self.image_size}")
        forward = np.subtract(self.look_at, self.position, dtype=np.float64)
        if np.linalg.norm(forward) == 0 or np.linalg.norm(forward[:2]) < 1e-9 * np.linalg.norm(forward):
            raise ValueError("the camera must look at a point away from it and not straight up or down")

    def axes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(right, up, forward) unit vectors of the camera in world coordinates."""
        forward = np.subtract(self.look_at, self.position, dtype=np.float64)
        forward /= np.linalg.norm(forward)
        right = np.cross(forward, (0.0, 0.0, 1.0))
        right /= np.linalg.norm(right)
        return right, np.cross(right, forward), forward


DEFAULT_CAMERA: Camera = Camera()
"""The front camera every 2D measure uses unless told otherwise."""


def project_to_camera(positions: np.ndarray, camera: Camera = DEFAULT_CAMERA) -> np.ndarray:
    """(T, J, 2) pixel coordinates (u right, v down) of (T, J, 3) world positions.

    u = cx + f * x / z, v = cy - f * y / z, with (x, y, z) the point in the camera's
    (right, up, forward) axes and (cx, cy) the image centre. Points at or behind the
    camera have no image; they raise ValueError.
    """
    p = _check_positions(positions, dims=(3,))
    right, up, forward = camera.axes()
    rel = p - np.asarray(camera.position, dtype=np.float64)
    depth = rel @ forward
    if (depth <= 0).any():
        raise ValueError("some joints are at or behind the camera; they cannot be projected")
    width, height = camera.image_size
    f = float(camera.focal_length_px)
    u = width / 2.0 + f * (rel @ right) / depth
    v = height / 2.0 - f * (rel @ up) / depth
    return np.stack([u, v], axis=-1)


def camera_facing(positions: np.ndarray, distance_m: float = 4.5) -> Camera:
    """The default camera moved to face the clip's mean pelvis position from ``distance_m``.

    A fixed camera at the origin would see a dancer who travelled far away (or past
    it) badly or not at all; centring on the clip keeps the dance in view while the
    camera still stands still, so travel shows in the image as it would on video.
    """
    centre = np.asarray(positions, dtype=np.float64)[:, 0].mean(axis=0)
    height = DEFAULT_CAMERA.position[2]
    return Camera(position=(float(centre[0]), float(centre[1]) - distance_m, height),
                  look_at=(float(centre[0]), float(centre[1]), height),
                  focal_length_px=DEFAULT_CAMERA.focal_length_px, image_size=DEFAULT_CAMERA.image_size)


def mm_align_2d(
    positions: np.ndarray, music_beat_times: np.ndarray, fps: float = 30.0,
    camera: Camera | None = None,
) -> float:
    """2D motion-music alignment (DabFusion's 2D-MM Align), in [0, 1].

    DabFusion scores generated *videos*, so the motion beats must come from what a
    camera sees: 2D keypoints. Our definition (the paper's exact formula was not
    available to us): project the joints with ``camera``, find motion beats as minima of
    the Gaussian-smoothed mean 2D keypoint speed (pixels per frame; Bailando's smoothing),
    and score them with the music-averaged form, sigma = 3 frames at 30 fps. Movement
    along the viewing axis shows only as a small change of scale in the image, but its
    stops still stop the keypoints, so their timing is kept. For keypoints you already
    have in 2D, call ``beat_align_music`` on the (T, J, 2) array directly.
    ``camera`` None: ``camera_facing(positions)``, the default camera centred on the clip.
    """
    if camera is None:
        camera = camera_facing(_check_positions(positions, dims=(3,)))
    return beat_align_music(project_to_camera(positions, camera), music_beat_times, fps)
