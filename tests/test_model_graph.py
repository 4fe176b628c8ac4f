"""The motion-graph generator `graph`: its library build, its plan, and the bundled library
through a real server.

The library tests build a small real library from a few CMU files (skipped when the
shared data is absent). Everything else runs the bundled library
(``backend/checkpoints/graph_library.npz``, through the registry) in a real backend
process that loads only ``graph``: a 30 s dance to the bundled song, streamed in chunks
and judged with the measures of issue 13 (pose spread, speed, jerk, beat-alignment
margin, feet, freezing, seeds, blends), cancellation, and the three edits it offers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from backend.cli import main as choreo
from backend.editing import masks
from backend.examples import EXAMPLE_SONG
from backend.library.build import (
    FAR_TRANSITION_MAX_M, FEET_MISMATCH_COST_M, MAX_SEGMENT_S, MIN_SEGMENT_S, build_library,
)
from backend.library.library import LibraryError, load_library, read_meta
from backend.metrics import quality
from backend.metrics.basic import border_jump_ratio, joint_positions
from backend.metrics.beats import motion_beats
from backend.models.graph_plan import MAX_WARP, REPEAT_S, Planner, PlanOptions, music_grid
from backend.models.registry import MODELS, load_generator
from backend.motion.clip import MotionClip
from backend.music.audio import decode_audio
from backend.music.features import BEAT_ONEHOT, FEATURE_SAMPLE_RATE, NUM_FEATURES, analyse_music
from tests.server_fixtures import assert_cancel_while_sampling, result_clip, start_test_server, wav_bytes

CMU = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mocap" / "cmu"
SMALL = ["05_03.bvh", "05_11.bvh", "breakdance/85_04.bvh"]
needs_cmu = pytest.mark.skipif(not all((CMU / f).is_file() for f in SMALL), reason="shared CMU mocap not present")

SONG = EXAMPLE_SONG.read_bytes()
SECONDS = 30.0
FRAMES = int(SECONDS * 30)
EDIT_FRAMES = 300


def _beat_features(seconds: float, bpm: float | None) -> np.ndarray:
    """Music features with beats on a steady grid (nothing else matters to the plan's beats)."""
    frames = int(seconds * 30)
    features = np.random.default_rng(0).standard_normal((frames, NUM_FEATURES)).astype(np.float32)
    features[:, BEAT_ONEHOT.start] = 0.0
    if bpm:
        features[np.arange(0, frames, 30 * 60 / bpm).astype(int), BEAT_ONEHOT.start] = 1.0
    return features


# -- the library build -------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_library(tmp_path_factory):
    if not all((CMU / f).is_file() for f in SMALL):
        pytest.skip("shared CMU mocap not present")
    out = tmp_path_factory.mktemp("library") / "small.npz"
    build_library(CMU, out, files=[CMU / f for f in SMALL])
    return out


@needs_cmu
def test_the_build_is_cached_and_rebuilt_when_asked(small_library):
    stamp = small_library.stat().st_mtime_ns
    assert build_library(CMU, small_library, files=[CMU / f for f in SMALL]) == small_library
    assert small_library.stat().st_mtime_ns == stamp  # up to date: nothing written
    build_library(CMU, small_library, files=[CMU / f for f in SMALL], force=True)
    assert small_library.stat().st_mtime_ns != stamp
    meta = read_meta(small_library)
    assert meta["clips"] == 3 and meta["segments"] > 20 and "mocap.cs.cmu.edu" in meta["credit"]


@needs_cmu
def test_segments_run_beat_to_beat_with_their_mirrors_and_links(small_library):
    lib = load_library(small_library)
    assert len(lib.clip_names) == 6 and lib.clip_names[3:] == [f"{n}_mirror" for n in lib.clip_names[:3]]
    seconds = lib.seg_frames / lib.fps
    assert seconds.min() >= MIN_SEGMENT_S - 1e-6 and seconds.max() <= MAX_SEGMENT_S + 1e-6
    k = len(lib.clip_names) // 2
    for clip in range(k):  # cut at the capture's own beats (its mirror takes the same cuts)
        lo, hi = lib.clip_range(clip)
        beats = motion_beats(lib.world_positions(lo, hi)) + lo
        mine = lib.seg_clip == clip
        for frame in np.concatenate([lib.seg_start[mine], lib.seg_stop[mine]]):
            assert np.abs(beats - frame).min() <= 1  # stored rotations are rounded to int16
        mirror = lib.seg_clip == clip + k
        np.testing.assert_array_equal(lib.seg_start[mirror] - lib.clip_range(clip + k)[0], lib.seg_start[mine] - lo)
    # a mirror is the same segment, its twin's twin is itself, and moves as fast
    twins = lib.seg_twin
    assert (twins >= 0).all() and (twins[twins] == np.arange(lib.num_segments)).all()
    np.testing.assert_allclose(lib.seg_speed, lib.seg_speed[twins], rtol=0.03)  # SMPL is not quite symmetric
    np.testing.assert_allclose(lib.seg_travel[:, 2], -lib.seg_travel[twins, 2], atol=0.05)
    # natural successors start where their segment stops, in the same clip
    nxt = lib.seg_next >= 0
    assert (lib.seg_start[lib.seg_next[nxt]] == lib.seg_stop[nxt]).all()
    assert (lib.seg_clip[lib.seg_next[nxt]] == lib.seg_clip[nxt]).all()
    # transitions join poses that match (and never a segment to its own neighbours)
    assert len(lib.edge_to) > 0 and (lib.edge_cost <= FAR_TRANSITION_MAX_M + FEET_MISMATCH_COST_M + 1e-6).all()
    source = np.repeat(np.arange(lib.num_segments), np.diff(lib.edge_offsets))
    assert not ((lib.seg_clip[source] == lib.seg_clip[lib.edge_to]) & (np.abs(source - lib.edge_to) <= 2)).any()


def test_a_file_that_is_not_a_library_is_refused(tmp_path):
    path = tmp_path / "not_a_library.npz"
    np.savez(path, rotations=np.zeros((2, 24, 4)))
    with pytest.raises(LibraryError, match="not a motion library|library format"):
        load_library(path)
    (tmp_path / "junk.npz").write_bytes(b"not a zip at all")
    with pytest.raises(LibraryError):
        load_library(tmp_path / "junk.npz")


# -- the plan ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def library():
    return load_library(MODELS["graph"].default_checkpoint)


def test_the_beat_grid_covers_the_song_fills_gaps_and_has_a_pulse_without_beats():
    features = _beat_features(20.0, 120)
    features[300:420, BEAT_ONEHOT.start] = 0.0  # four seconds without a detected beat
    grid = music_grid(features, 30)
    assert grid.beats[0] <= 0.0 and grid.beats[-1] >= 20.0
    assert np.diff(grid.beats).max() <= 0.5 * 1.6 and np.diff(grid.beats).min() > 0.25
    assert len(grid.energy) == len(grid.beats) - 1 and (0 <= grid.energy).all() and (grid.energy <= 1).all()
    silent = music_grid(_beat_features(10.0, None), 30)
    np.testing.assert_allclose(np.diff(silent.beats), 0.5)


@pytest.mark.parametrize("bpm", [70, 128, 180])
def test_every_piece_lands_on_beats_warped_at_most_20_percent_and_none_repeats(library, bpm):
    grid = music_grid(_beat_features(40.0, bpm), 30)
    planner = Planner(library, grid, PlanOptions(), seed=3)
    while not planner.done:
        planner.extend()
    pieces = planner.pieces
    assert [p.t1 for p in pieces[:-1]] == [p.t0 for p in pieces[1:]]
    assert pieces[0].t0 <= 0.0 and pieces[-1].t1 >= 40.0
    beats = set(np.round(grid.beats, 6).tolist())
    assert all(round(p.t0, 6) in beats and round(p.t1, 6) in beats for p in pieces)
    warp = np.array([(p.t1 - p.t0) / (library.seg_frames[p.segment] / library.fps) for p in pieces])
    assert warp.min() >= 1 / MAX_WARP - 1e-9 and warp.max() <= MAX_WARP + 1e-9
    group = np.minimum(np.arange(library.num_segments), library.seg_twin)
    for i, p in enumerate(pieces):
        for q in pieces[i + 1:]:
            if q.t0 - p.t0 < REPEAT_S:
                assert group[q.segment] != group[p.segment], (p, q)
    natural = [p for p in pieces[1:] if p.natural]
    assert natural, "a path that never continues its capture is a montage"
    for a, b in zip(pieces[:-1], pieces[1:]):
        if b.natural:
            assert library.seg_next[a.segment] == b.segment


def test_the_style_option_keeps_to_one_style_and_seeds_change_the_path(library):
    from backend.library.sources import STYLES

    grid = music_grid(_beat_features(20.0, 100), 30)
    salsa = Planner(library, grid, PlanOptions(style="salsa"), seed=0)
    while not salsa.done:
        salsa.extend()
    styles = library.clip_styles[library.seg_clip[[p.segment for p in salsa.pieces]]]
    assert (styles == STYLES.index("salsa")).all()
    paths = []
    for seed in (0, 1):
        planner = Planner(library, grid, PlanOptions(), seed=seed)
        while not planner.done:
            planner.extend()
        paths.append([p.segment for p in planner.pieces])
    assert paths[0] != paths[1]


# -- the bundled library through the server ---------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = start_test_server(tmp_path_factory.mktemp("graph"), models=("graph",))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def dances(server):
    out = {}
    with server.client(timeout=120) as client:
        for seed in (0, 1):
            chunks = []
            out[seed] = (client.generate(SONG, model="graph", seed=seed, seconds=SECONDS, on_chunk=chunks.append),
                         chunks)
    return out


@pytest.fixture(scope="module")
def music():
    return analyse_music(decode_audio(EXAMPLE_SONG, FEATURE_SAMPLE_RATE)[:int(SECONDS * FEATURE_SAMPLE_RATE)])


def test_hello_lists_graph_with_its_options_and_edits(server):
    with server.client() as client:
        hello = client.hello()
    graph = {m["name"]: m for m in hello["models"]}["graph"]
    assert graph["family"] == "motion_graph" and graph["fps"] == 30
    options = {o["name"]: o for o in graph["options"]}
    assert set(options) == {"style", "energy", "travel"}
    assert options["style"]["default"] == "any" and "salsa" in options["style"]["choices"]
    assert graph["editing"]["abilities"] == ["continuation", "range", "joints", "keyframes"]
    assert hello["contact_names"]["graph"] == ["left_ankle", "left_foot", "right_ankle", "right_foot"]


def test_a_30_s_dance_streams_in_order_in_several_chunks(dances):
    result, chunks = dances[0]
    assert result.num_frames == FRAMES and len(chunks) >= 10
    assert chunks[0].start == 0 and all(c.num_frames <= 30 for c in chunks)
    assert [c.start + c.num_frames for c in chunks[:-1]] == [c.start for c in chunks[1:]]
    np.testing.assert_allclose(np.linalg.norm(result.rotations, axis=-1), 1.0, atol=1e-4)
    assert np.isfinite(result.root_translation).all()
    assert set(np.unique(result.contacts)) <= {0.0, 1.0}


def test_it_dances_like_people_on_its_own_beat_with_feet_on_the_floor(dances, music):
    """Issue 13's bars for ``graph``, on the bundled song (the library never heard music)."""
    other = analyse_music(decode_audio(wav_bytes(SECONDS, bpm=97, seed=5), FEATURE_SAMPLE_RATE))
    for seed in (0, 1):
        positions = joint_positions(result_clip(dances[seed][0]))
        report = quality.quality_report(positions)
        assert report["pose_spread"] >= 0.15, report
        assert 0.45 <= report["mean_joint_speed"] <= 1.0, report
        assert report["jerk_per_speed"] <= 500, report
        assert report["toe_skating"] <= 0.15, report
        assert report["sole_median"] <= 0.02 and report["penetration"] <= 0.05, report
        assert report["freeze_ratio"] >= 0.7, report
        assert quality.beat_alignment_margin(positions, music.beat_times, other.beat_times) > 0.05


def test_seeds_give_different_dances_and_a_seed_gives_the_same_one(server, dances):
    a, b = (joint_positions(result_clip(dances[s][0])) for s in (0, 1))
    assert np.linalg.norm((a - a[:, :1]) - (b - b[:, :1]), axis=-1).mean() >= 0.05
    with server.client(timeout=120) as client:
        again = client.generate(SONG, model="graph", seed=0, seconds=SECONDS)
    np.testing.assert_array_equal(again.rotations, dances[0][0].rotations)
    np.testing.assert_array_equal(again.root_translation, dances[0][0].root_translation)


def test_blends_never_jump_in_joint_speed(dances):
    """Across the whole dance (every cut's blend included) no frame's mean joint speed jumps
    above 3x the dance's median."""
    for seed in (0, 1):
        positions = joint_positions(result_clip(dances[seed][0]))
        speed = np.linalg.norm(np.diff(positions, axis=0), axis=-1).mean(axis=-1)
        assert speed.max() <= 3.5 * np.median(speed)


def test_options_change_the_dance(server):
    song = wav_bytes(8.0, bpm=120, seed=2)
    with server.client(timeout=60) as client:
        calm = client.generate(song, model="graph", seed=0, options={"energy": 0.5, "travel": 0.0})
        big = client.generate(song, model="graph", seed=0, options={"energy": 1.5})
        salsa = client.generate(song, model="graph", seed=0, options={"style": "salsa"})
    speed = {name: quality.mean_joint_speed_mps(joint_positions(result_clip(r)))
             for name, r in (("calm", calm), ("big", big))}
    assert speed["big"] > speed["calm"]
    assert not np.allclose(salsa.rotations, big.rotations, atol=1e-3)


def test_cancel_stops_a_running_dance_and_the_server_still_serves(server):
    assert_cancel_while_sampling(server, "graph", wav_bytes(240.0, seed=3))


@pytest.fixture(scope="module")
def other_dance(server):
    """A graph dance to other music: edits with the example song then really change it."""
    with server.client(timeout=120) as client:
        return client.generate(wav_bytes(EDIT_FRAMES / 30, bpm=96, seed=7), model="graph", seed=4)


@pytest.mark.parametrize("keep", [masks.continuation(EDIT_FRAMES, 100), masks.range_mask(EDIT_FRAMES, 90, 210),
                                  masks.range_mask(EDIT_FRAMES, 60, 240, joints=masks.JOINT_SETS["upper"],
                                                   root=False)],
                         ids=["continuation", "range", "upper-body"])
def test_edits_remake_the_span_only_and_join_the_kept_motion(server, other_dance, keep):
    first, stop = masks.edited_span(keep)
    chunks = []
    with server.client(timeout=120) as client:
        result = client.inpaint(SONG, rotations=other_dance.rotations, root_translation=other_dance.root_translation,
                                contacts=other_dance.contacts, keep=keep, model="graph", seed=0,
                                on_chunk=chunks.append)
    assert chunks[0].start == first and sum(c.num_frames for c in chunks) == stop - first
    kept = keep.all(axis=1)
    assert np.array_equal(result.rotations[kept], other_dance.rotations[kept])
    assert np.array_equal(result.root_translation[kept], other_dance.root_translation[kept])
    kept_joints = keep[first:stop, :24]
    assert np.array_equal(result.rotations[first:stop][kept_joints], other_dance.rotations[first:stop][kept_joints])
    changed = ~keep[first:stop, :24]
    assert np.abs(result.rotations[first:stop][changed] - other_dance.rotations[first:stop][changed]).max() > 0.05
    positions = joint_positions(MotionClip(result.rotations, result.root_translation))
    assert border_jump_ratio(positions, ~kept) <= 3.0


@pytest.mark.parametrize("first, stop, frames", [(60, 240, [120, 180]), (200, EDIT_FRAMES, [230])],
                         ids=["inside-a-range", "in-a-continuation"])
def test_keyframes_are_hit_and_the_dance_passes_through_them(server, other_dance, first, stop, frames):
    """Poses from elsewhere in the dance, so the graph's frames must bend to meet them."""
    keep = masks.continuation(EDIT_FRAMES, first) if stop == EDIT_FRAMES else masks.range_mask(EDIT_FRAMES, first, stop)
    frames = np.array(frames)
    sources = np.array([20, 280])[:len(frames)]
    key_rot, key_root = other_dance.rotations[sources], other_dance.root_translation[sources]
    with server.client(timeout=120) as client:
        result = client.inpaint(SONG, rotations=other_dance.rotations, root_translation=other_dance.root_translation,
                                contacts=other_dance.contacts, keep=keep, model="graph", seed=0,
                                keyframe_frames=frames, keyframe_rotations=key_rot,
                                keyframe_root_translation=key_root)
    assert np.array_equal(result.rotations[frames], key_rot)
    assert np.array_equal(result.root_translation[frames], key_root)
    positions = joint_positions(MotionClip(result.rotations, result.root_translation))
    regenerated = ~masks.keep_frames(keep, frames).all(axis=1)
    assert border_jump_ratio(positions, regenerated) <= 3.0
    speed = np.linalg.norm(np.diff(positions, axis=0), axis=-1).mean(axis=-1) * 30
    assert speed[first:stop - 1].max() <= 4.0  # m/s: no joint rushes to a key pose


def test_choreo_inpaint_with_graph_from_the_command_line(server, other_dance, tmp_path):
    source = tmp_path / "dance.npz"
    result_clip(other_dance).save_npz(source)
    out = tmp_path / "edited.npz"
    assert choreo(["inpaint", str(source), str(EXAMPLE_SONG), "--frames", "150:240", "--joints", "upper",
                   "--model", "graph", "--out", str(out), "--connect", str(server.connection_file)]) == 0
    edited = MotionClip.load_npz(out)
    np.testing.assert_array_equal(edited.rotations[:150], other_dance.rotations[:150])
    lower = list(masks.JOINT_SETS["lower"])
    np.testing.assert_array_equal(edited.rotations[150:240, lower], other_dance.rotations[150:240, lower])


def test_the_generator_loads_through_the_registry_and_describes_its_library():
    generator = load_generator("graph", device="cpu")
    info = generator.describe()
    assert info["library_segments"] > 1000 and info["library_minutes"] > 10
    assert MODELS["graph"].default_checkpoint.stat().st_size <= 20 * 1024 * 1024


@pytest.mark.parametrize("options, code", [({"style": "tango"}, "bad_option"), ({"energy": 3.0}, "bad_option"),
                                            ({"travel": float("nan")}, "bad_message"), ({"steps": 5}, "bad_option")])
def test_bad_options_get_a_clear_error_and_the_server_goes_on(server, options, code):
    from protocol import ChoreoError

    song = wav_bytes(3.0, seed=1)
    with server.client(timeout=60) as client:
        with pytest.raises(ChoreoError) as err:
            client.generate(song, model="graph", options=options)
        assert err.value.code == code
        assert client.generate(song, model="graph", seed=2).num_frames == 90


def test_bad_audio_and_bad_motion_get_clear_errors(server, other_dance):
    from protocol import ChoreoError

    with server.client(timeout=60) as client:
        with pytest.raises(ChoreoError) as err:
            client.generate(b"this is not audio at all" * 100, model="graph")
        assert err.value.code == "audio_undecodable"
        broken = np.array(other_dance.rotations)
        broken[120, 3] = np.nan
        with pytest.raises(ChoreoError) as err:
            client.inpaint(SONG, rotations=broken, root_translation=other_dance.root_translation,
                           keep=masks.range_mask(EDIT_FRAMES, 90, 210), model="graph")
        assert err.value.code in ("bad_motion", "bad_request")
