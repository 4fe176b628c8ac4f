"""The procedural training set: synthesised songs, beat-synchronised dance, the dataset folder.

Everything here runs for real: songs are rendered and analysed with librosa, dances go
through our FK, a real MIT-licensed song is decoded from its ogg file.
"""

from __future__ import annotations

import json
from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf

from backend.motion.clip import MotionClip
from backend.motion.kinematics import forward_kinematics_np
from backend.motion.rotations import np_ as rot
from backend.motion.skeleton import FOOT_CONTACT_JOINTS, JOINT_INDEX, JOINT_NAMES, OFFSETS, SOLE_BELOW_FOOT_JOINT
from backend.training.build_dataset import DatasetBuildError, build_procedural_dataset
from backend.training.datasets import load_dance_folder
from backend.training.procedural import (
    MusicDescriptor, ProceduralError, describe_music, procedural_dance, procedural_dance_with_plan,
)
from backend.training.procedural.lower_moves import lower_move
from backend.training.procedural.plan import LOWER_MOVES, UPPER_MOVES, BodyStyle
from backend.training.procedural.upper_moves import upper_move
from backend.training.synth_music import SynthMusicError, synthesize, synthesize_song

SECTOID = Path(__file__).resolve().parents[2] / "shared" / "data" / "music" / "sectoid"
FPS = 30
J = JOINT_INDEX


def joint_positions(clip: MotionClip) -> np.ndarray:
    matrices = rot.quaternion_to_matrix(clip.rotations.astype(np.float64))
    return forward_kinematics_np(matrices, clip.root_translation.astype(np.float64))[0]


def local_minima(x: np.ndarray, prominence: float) -> np.ndarray:
    """Frames where x is lowest within +-3 frames and at least ``prominence`` below that window's top."""
    idx = []
    for i in range(3, len(x) - 3):
        window = x[i - 3:i + 4]
        if x[i] == window.min() and window.max() - x[i] > prominence:
            idx.append(i)
    return np.array(idx, dtype=int)


@pytest.fixture(scope="module")
def house_dance():
    rng = np.random.default_rng(7)
    song = synthesize(124.0, 12.0, rng, style="house")
    music = describe_music(song.samples, song.sample_rate, song.beat_times, song.beats_per_bar, downbeat_index=0)
    clip, plan = procedural_dance_with_plan(song.beat_times, 12.0, music, rng)
    return song, music, clip, plan


# ------------------------------------------------------------------ music


@pytest.mark.parametrize("bpm, seed", [(72.0, 1), (124.0, 2), (172.0, 3)])
def test_librosa_hears_the_synthesised_tempo_and_beats(bpm, seed):
    samples, beats = synthesize_song(bpm, 12.0, np.random.default_rng(seed))
    assert samples.dtype == np.float32 and samples.shape == (12 * 22050,)
    assert np.abs(samples).max() <= 1.0 and np.sqrt(np.mean(samples**2)) > 0.01
    np.testing.assert_allclose(np.diff(beats), 60.0 / bpm, rtol=1e-9)
    assert 0.0 < beats[0] < 60.0 / bpm and beats[-1] < 12.0

    tempo, tracked = librosa.beat.beat_track(y=samples, sr=22050, units="time")
    tempo = float(np.atleast_1d(tempo)[0])
    assert min(abs(tempo / bpm - r) for r in (0.5, 1.0, 2.0)) < 0.05, (tempo, bpm)
    # The tracked beats sit on the true grid (or its half-beats when librosa doubles the tempo).
    grid = np.concatenate([beats, beats + 30.0 / bpm]) if tempo > 1.5 * bpm else beats
    hits = np.mean([np.min(np.abs(grid - t)) < 0.07 for t in tracked])
    assert hits > 0.8


def test_synthesis_is_reproducible_and_varied():
    a = synthesize(110.0, 4.0, np.random.default_rng(5))
    b = synthesize(110.0, 4.0, np.random.default_rng(5))
    c = synthesize(110.0, 4.0, np.random.default_rng(6))
    np.testing.assert_array_equal(a.samples, b.samples)
    assert not np.array_equal(a.samples, c.samples)
    styles = {synthesize(110.0, 1.0, np.random.default_rng(s)).style for s in range(12)}
    assert len(styles) >= 3  # several styles fit 110 BPM


def test_waltz_has_three_beats_to_the_bar():
    song = synthesize(80.0, 6.0, np.random.default_rng(0), style="waltz")
    assert song.beats_per_bar == 3 and song.sections[0][0] == pytest.approx(song.beat_times[0])


@pytest.mark.parametrize("kwargs, code", [
    (dict(bpm=0.0, seconds=4.0), "bad_tempo"), (dict(bpm=float("nan"), seconds=4.0), "bad_tempo"),
    (dict(bpm=120.0, seconds=-1.0), "bad_duration"), (dict(bpm=120.0, seconds=4.0, style="polka"), "unknown_style"),
    (dict(bpm=120.0, seconds=4.0, sample_rate=100), "bad_sample_rate"),
])
def test_synthesiser_rejects_bad_requests(kwargs, code):
    with pytest.raises(SynthMusicError) as err:
        synthesize(rng=np.random.default_rng(0), **kwargs)
    assert err.value.code == code


def test_descriptor_follows_the_song_sections():
    song = synthesize(120.0, 16.0, np.random.default_rng(9), style="pop")
    assert [name for _, name in song.sections] == ["drop", "breakdown"]  # this seed's plan
    music = describe_music(song.samples, song.sample_rate, song.beat_times, 4, downbeat_index=0)
    n = int(16.0 * FPS)
    for curve in (music.energy, music.brightness, music.onset_density):
        assert curve.shape == (n,) and np.all((curve >= 0) & (curve <= 1))
    change = int(song.sections[1][0] * FPS)
    drop, breakdown = slice(15, change - 15), slice(change + 15, n - 15)
    assert music.energy[drop].mean() > music.energy[breakdown].mean() + 0.1  # drums and bass stop
    assert music.onset_density[drop].mean() > music.onset_density[breakdown].mean()
    part = music.excerpt(4.0, 8.0)
    assert part.energy.shape == (int(8.0 * FPS),)
    assert part.beat_times[0] >= 0 and part.beat_times[-1] < 8.0
    np.testing.assert_allclose(part.beat_times, song.beat_times[(song.beat_times >= 4) & (song.beat_times < 12)] - 4.0)


# ------------------------------------------------------------------ dance


def test_dance_is_a_valid_clip(house_dance):
    _, _, clip, _ = house_dance
    assert clip.num_frames == 360 and clip.fps == 30.0
    assert np.isfinite(clip.rotations).all() and np.isfinite(clip.root_translation).all()
    np.testing.assert_allclose(np.linalg.norm(clip.rotations, axis=-1), 1.0, atol=1e-5)
    assert clip.contact_names == tuple(JOINT_NAMES[j] for j in FOOT_CONTACT_JOINTS)
    assert set(np.unique(clip.contacts)) <= {0.0, 1.0} and clip.contacts.mean() > 0.3


def test_feet_are_on_the_floor_and_never_slide(house_dance):
    _, _, clip, _ = house_dance
    pos = joint_positions(clip)
    lowest = pos[:, :, 2].min(axis=1) - SOLE_BELOW_FOOT_JOINT
    assert lowest.min() > -0.02, "a foot sinks into the floor"
    assert abs(lowest.min()) < 0.01
    grounded = lowest < 0.02
    assert grounded.mean() > 0.75, "the body floats"
    airborne_runs = np.diff(np.flatnonzero(np.diff(np.concatenate([[1], grounded, [1]]).astype(int))))[::2]
    assert airborne_runs.max(initial=0) <= 10, "in the air for longer than a jump"
    for toe, ankle in ((J["left_foot"], J["left_ankle"]), (J["right_foot"], J["right_ankle"])):
        flat_ankle = pos[:, ankle, 2] - pos[:, toe, 2] + SOLE_BELOW_FOOT_JOINT  # ankle height when flat
        for joint, floor in ((toe, SOLE_BELOW_FOOT_JOINT), (ankle, np.median(flat_ankle))):
            down = pos[:, joint, 2] < floor + 0.02
            both = down[:-1] & down[1:]
            slide = np.linalg.norm(np.diff(pos[:, joint, :2], axis=0), axis=-1)[both]
            assert both.mean() > 0.3 and slide.max() < 0.01, (JOINT_NAMES[joint], slide.max())


def test_body_is_upright_and_faces_minus_y(house_dance):
    _, _, clip, _ = house_dance
    pos = joint_positions(clip)
    assert (pos[:, J["head"], 2] - pos[:, J["pelvis"], 2]).min() > 0.45
    across = pos[:, J["left_hip"]] - pos[:, J["right_hip"]]
    forward = np.cross(across, [0.0, 0.0, 1.0])
    forward /= np.linalg.norm(forward, axis=-1, keepdims=True)
    assert forward.mean(axis=0)[1] < -0.5
    assert np.abs(clip.root_translation[:, :2]).max() < 1.0  # dances on the spot, does not wander off


def test_knees_and_elbows_bend_one_way_only(house_dance):
    _, _, clip, _ = house_dance
    pos = joint_positions(clip)
    for hip, knee, ankle, toe in (("left_hip", "left_knee", "left_ankle", "left_foot"),
                                  ("right_hip", "right_knee", "right_ankle", "right_foot")):
        h, k, a, t = (pos[:, J[n]] for n in (hip, knee, ankle, toe))
        along = (a - h) / np.linalg.norm(a - h, axis=-1, keepdims=True)
        bulge = (k - h) - np.sum((k - h) * along, -1, keepdims=True) * along  # knee off the hip-ankle line
        toes = t - a
        toes[:, 2] = 0
        assert np.min(np.sum(bulge * toes, -1) / np.linalg.norm(toes, axis=-1)) > -0.005, f"{knee} hyperextends"
    for _shoulder, elbow in (("left_shoulder", "left_elbow"), ("right_shoulder", "right_elbow")):
        upper = OFFSETS[J[elbow]] / np.linalg.norm(OFFSETS[J[elbow]])
        hinge = np.cross(upper, [0.0, -1.0, 0.0])  # flexing brings the forearm forward in the T-pose
        hinge /= np.linalg.norm(hinge)
        bend = rot.quaternion_to_axis_angle(clip.rotations[:, J[elbow]].astype(np.float64))
        flex = bend @ hinge
        assert flex.min() > -0.05, f"{elbow} bends backwards"
        assert np.linalg.norm(bend - flex[:, None] * hinge, axis=-1).max() < 0.35, f"{elbow} twists"
        assert flex.max() > 0.3  # and it does bend


def test_pelvis_dips_and_stops_land_on_beats(house_dance):
    song, _, clip, plan = house_dance
    assert not plan.half_time
    pos = joint_positions(clip)
    beat_frames = song.beat_times * FPS
    minima = local_minima(pos[:, J["pelvis"], 2], 0.003)
    near = np.array([np.min(np.abs(beat_frames - m)) <= 2.0 for m in minima])
    chance = 5.0 / (FPS * 60.0 / 124.0)
    assert len(minima) >= 10 and near.mean() > max(0.7, 2 * chance), near.mean()
    # Whole-body speed is lower on the beat than a quarter beat either side of it.
    speed = np.linalg.norm(np.diff(pos, axis=0), axis=-1).mean(axis=1)
    t = np.arange(len(speed)) / FPS + 0.5 / FPS
    quarter = 15.0 / 124.0
    inside = (song.beat_times > 0.5) & (song.beat_times < 11.5)
    on = np.interp(song.beat_times[inside], t, speed).mean()
    beats = song.beat_times[inside]
    off = np.interp(np.concatenate([beats - quarter, beats + quarter]), t, speed).mean()
    assert on < 0.8 * off, (on, off)


def test_fast_music_is_danced_in_half_time_still_on_beats():
    beats = 0.2 + np.arange(40) * 60.0 / 170.0
    clip, plan = procedural_dance_with_plan(beats, 10.0, {"energy": 0.8}, np.random.default_rng(3))
    assert plan.half_time
    pelvis = joint_positions(clip)[:, J["pelvis"], 2]
    minima = local_minima(pelvis, 0.003)
    assert np.mean([np.min(np.abs(beats * FPS - m)) <= 2.0 for m in minima]) > 0.7


@pytest.mark.parametrize("style, bpm, seed", [
    ("latin", 93.0, 1), ("funk", 112.0, 2), ("hiphop", 88.0, 3), ("waltz", 84.0, 4), ("metal", 168.0, 5),
])
def test_whole_body_speed_minima_land_on_the_beats_the_model_hears(style, bpm, seed):
    # Beat alignment against the beats analyse_music finds in the stored audio (what the
    # model is shown; a latin song's may sit on the off-beat, a fast one's at half tempo):
    # every move lands on a beat (averaged over motion beats, FACT's form), and the
    # music-averaged form (Bailando's) is clearly lower on beats shifted by half a beat.
    # A fast song is danced in half time, so it meets only every other music beat.
    from backend.metrics.beats import beat_align_motion, beat_align_music

    rng = np.random.default_rng(seed)
    song = synthesize(bpm, 8.0, rng, style=style)
    music = describe_music(song.samples, song.sample_rate, song.beat_times, song.beats_per_bar, downbeat_index=0)
    assert len(music.heard_beats) >= 4
    clip = procedural_dance(song.beat_times, 8.0, music, rng)
    pos = joint_positions(clip)
    heard = music.heard_beats
    period = float(np.median(np.diff(heard)))
    moves_on = beat_align_motion(pos, heard)
    score_on, score_off = beat_align_music(pos, heard), beat_align_music(pos, heard + period / 2)
    assert moves_on >= 0.85 and score_on - score_off >= 0.15, (moves_on, score_on, score_off)
    assert score_on >= (0.45 if bpm > 150 else 0.75), score_on


def _dance_stats(music: dict, seeds=range(6)) -> dict[str, float]:
    beats = 0.25 + np.arange(24) * 0.5
    speed, wrist, lifted, moves = [], [], [], []
    for s in seeds:
        clip, plan = procedural_dance_with_plan(beats, 10.0, music, np.random.default_rng(s))
        pos = joint_positions(clip)
        speed.append(np.linalg.norm(np.diff(pos, axis=0), axis=-1).mean())
        wrist.append((pos[:, [J["left_wrist"], J["right_wrist"]], 2] - pos[:, [J["head"]], 2]).mean())
        lifted.append(np.mean(pos[:, [J["left_foot"], J["right_foot"]], 2].max(axis=1) > SOLE_BELOW_FOOT_JOINT + 0.03))
        moves += [m for p in plan.phrases for m in (p.lower, p.upper)]
    calm = {"sway", "groove", "relaxed", "swing"}
    return {"speed": np.mean(speed), "wrist": np.mean(wrist), "lifted": np.mean(lifted),
            "calm": np.mean([m in calm for m in moves])}


def test_the_music_changes_the_dance():
    quiet = _dance_stats({"energy": 0.3, "brightness": 0.3, "onset_density": 0.1})
    loud = _dance_stats({"energy": 0.95, "brightness": 0.8, "onset_density": 0.6})
    assert loud["speed"] > 1.5 * quiet["speed"], (quiet, loud)
    assert loud["wrist"] > quiet["wrist"] + 0.1, (quiet, loud)
    assert loud["lifted"] > quiet["lifted"] + 0.1, (quiet, loud)
    assert quiet["calm"] > 0.6 > loud["calm"] + 0.3, (quiet, loud)


def test_a_change_in_the_music_changes_the_moves():
    beats = np.arange(24) * 0.5  # phrases of 8 beats: 0-4 s, 4-8 s, 8-12 s
    energy = np.where(np.arange(360) < 120, 0.35, 0.95)  # quiet first phrase, then loud
    for seed in range(8):
        clip, plan = procedural_dance_with_plan(beats, 12.0, {"energy": energy}, np.random.default_rng(seed))
        first, second = plan.phrases[0], plan.phrases[1]
        assert first.music[0] < 0.4 and second.music[0] > 0.9
        assert first.lower != second.lower and first.upper != second.upper


def test_a_seed_repeats_a_dance_and_another_seed_varies_it(house_dance):
    song, music, clip, _ = house_dance
    a = procedural_dance(song.beat_times, 6.0, music, np.random.default_rng(1))
    b = procedural_dance(song.beat_times, 6.0, music, np.random.default_rng(1))
    c = procedural_dance(song.beat_times, 6.0, music, np.random.default_rng(2))
    np.testing.assert_array_equal(a.rotations, b.rotations)
    np.testing.assert_array_equal(a.root_translation, b.root_translation)
    assert np.abs(a.rotations - c.rotations).max() > 0.1


@pytest.mark.skipif(not (SECTOID / "feelings" / "mix.ogg").is_file(), reason="shared music not present")
def test_dance_to_a_real_song_follows_its_tracked_beats():
    with sf.SoundFile(SECTOID / "feelings" / "mix.ogg") as f:
        f.seek(60 * f.samplerate)
        stereo = f.read(10 * f.samplerate, dtype="float32", always_2d=True)
        rate = f.samplerate
    samples = librosa.resample(stereo.mean(axis=1), orig_sr=rate, target_sr=22050)
    music = describe_music(samples, 22050)  # beats from the features' own tracker
    tracked_bpm = 60.0 * (len(music.beat_times) - 1) / (music.beat_times[-1] - music.beat_times[0])
    # The chart's tempo (notes.mid) is 95 BPM; the tracker may count it in double time.
    assert min(abs(tracked_bpm / 95.0 - r) for r in (0.5, 1.0, 2.0)) < 0.05, tracked_bpm
    assert music.energy.mean() > 0.6  # a loud rock mix
    clip = procedural_dance(music.beat_times, 10.0, music, np.random.default_rng(0))
    pos = joint_positions(clip)
    assert abs(pos[:, :, 2].min() - SOLE_BELOW_FOOT_JOINT) < 0.01
    minima = local_minima(pos[:, J["pelvis"], 2], 0.003)
    assert np.mean([np.min(np.abs(music.beat_times * FPS - m)) <= 2.0 for m in minima]) > 0.7


@pytest.mark.parametrize("beats, seconds, music, code", [
    ([1.0], 5.0, {}, "bad_beats"), ([1.0, 0.5, 2.0], 5.0, {}, "bad_beats"),
    ([0.0, 0.05, 0.1], 5.0, {}, "bad_beats"), ([0.0, np.nan], 5.0, {}, "bad_beats"),
    ([0.0, 0.5, 1.0], 0.0, {}, "bad_duration"), ([0.0, 0.5, 1.0], 5.0, {"loudness": 1.0}, "bad_descriptor"),
    ([0.0, 0.5, 1.0], 5.0, {"energy": np.array([])}, "bad_descriptor"),
])
def test_dance_rejects_bad_input(beats, seconds, music, code):
    with pytest.raises(ProceduralError) as err:
        procedural_dance(np.array(beats), seconds, music, np.random.default_rng(0))
    assert err.value.code == code


def test_descriptor_dict_scalars_become_curves():
    music = MusicDescriptor.from_dict({"energy": 0.9, "beats_per_bar": 3}, 50)
    curves = music.curves_at(50, FPS)
    assert music.beats_per_bar == 3
    np.testing.assert_allclose(curves["energy"], 0.9)
    np.testing.assert_allclose(curves["onset_density"], 0.5)


def test_every_move_the_plan_can_choose_can_be_danced():
    """The plan chooses from the affinity tables, the bodies are built in lower_moves and
    upper_moves: a move the plan can pick and no body builds must not slip through."""
    style = BodyStyle.sample(np.random.default_rng(0))
    for name in LOWER_MOVES:
        move = lower_move(name, 8, 1.0, style, 1)
        assert all(0 <= step.at < 8 and step.foot in (0, 1) for step in move.steps), name
    ph = np.linspace(0.0, 8.0, 40)
    for name in UPPER_MOVES:
        pose = upper_move(name, ph, (ph / 4) % 1.0, np.ones(40), np.zeros(40), np.full(40, 1.2), style, 1)
        assert pose.wrist.shape == (40, 2, 3) and np.isfinite(pose.wrist).all(), name
    with pytest.raises(ValueError, match="unknown lower-body move"):
        lower_move("moonwalk", 8, 1.0, style, 0)
    with pytest.raises(ValueError, match="unknown upper-body move"):
        upper_move("moonwalk", ph, ph, ph, ph, ph, style, 0)


# ------------------------------------------------------------------ dataset folder


def test_build_writes_npz_wav_pairs(tmp_path):
    real = tmp_path / "real" / "demo_song"
    real.mkdir(parents=True)
    song = synthesize(100.0, 9.0, np.random.default_rng(4), style="rock")
    sf.write(real / "mix.wav", song.samples, 22050)
    (tmp_path / "real" / "COPYRIGHT").write_text("demo licence")
    out = build_procedural_dataset(tmp_path / "data", num_synth_songs=2, clip_seconds=4.0,
                                   real_music_dir=tmp_path / "real", seed=0, excerpts_per_song=2,
                                   variations=2, workers=1)
    npz = sorted(p.stem for p in out.glob("*.npz"))
    wav = sorted(p.stem for p in out.glob("*.wav"))
    assert npz == wav and len(npz) == 2 + 2 * 2
    assert sum(s.startswith("real_demo_song_") for s in npz) == 4
    for stem in npz:
        clip = MotionClip.load_npz(out / f"{stem}.npz")
        info = sf.info(out / f"{stem}.wav")
        assert clip.num_frames == 120 and info.duration == pytest.approx(4.0, abs=1e-3)
    manifest = json.loads((out / "procedural_manifest.json").read_text())
    assert {c["name"] for c in manifest["clips"]} == set(npz)
    assert (out / "COPYRIGHT_real.txt").read_text() == "demo licence"
    # The training loader pairs them (and ignores the manifest and licence files).
    items = load_dance_folder(out, contact_joints=FOOT_CONTACT_JOINTS)
    assert sorted(item.name for item in items) == npz
    assert all(item.audio_path.suffix == ".wav" for item in items)
    # Same seed, same data.
    again = build_procedural_dataset(tmp_path / "again", 2, 4.0, None, 0, workers=1)
    first = sorted(out.glob("synth_*.npz"))[0]
    np.testing.assert_array_equal(MotionClip.load_npz(first).rotations,
                                  MotionClip.load_npz(again / first.name).rotations)


def test_build_rejects_a_missing_music_folder(tmp_path):
    with pytest.raises(DatasetBuildError) as err:
        build_procedural_dataset(tmp_path / "data", 1, 4.0, tmp_path / "nowhere", 0, workers=1)
    assert err.value.code == "no_real_music"
    with pytest.raises(DatasetBuildError) as err:
        build_procedural_dataset(tmp_path / "data", 1, 0.5, None, 0, workers=1)
    assert err.value.code == "bad_duration"
