"""Procedural dance on the SMPL skeleton: timed by the beat, styled by the music.

Why this exists: no dance capture can be downloaded here, yet the bundled model has
to learn to keep moving through a song, move in time, keep its feet on the floor and
dance differently to different music. So we make training motion that has exactly
those properties, from a small vocabulary of moves:

* timing comes from the beat. Every frame gets a continuous *pulse phase*
  (interpolated between beat times), and every move is a function of that phase, so
  accents (the pelvis dip, a clap, the top of an arm pump, a foot landing) fall on
  beats. The phase nearly stops on every music beat and hurries between (BEAT_HOLD),
  and no move rests between beats, so whole-body speed minima sit on the beats the
  model is shown (``heard_beats``). Fast music (beats under 0.42 s apart) is danced
  in half time, as people do, still holding on every beat;
* style comes from the music, in ways the 35 music features can see: loudness
  (RMS, which MFCC 0 and the onset envelope carry) sets amplitude and picks
  energetic moves, brightness (spectral centroid, the MFCC slope) raises the arms,
  onset density (the onset peaks) picks busy moves, tempo picks stepping or
  grooving. Moves are chosen per phrase (two bars), a change in the music between
  phrases forces a change of move, and moves cross-fade over one beat;
* each clip also draws a body style (amplitude, posture, stance, asymmetry,
  personal move preferences), so one song can be danced many ways.

The lower body is planned as foot placements: a stepping foot lifts between beats
and lands on a beat, a planted foot never moves, soles sit on z = 0. Legs then
reach those placements by analytic two-bone IK from the hips, and the pelvis is
kept low enough that they always can. Arms are authored as wrist targets in the
chest frame and solved by the same IK, with elbows bending one way only.

The modules, in the order a dance is made:

* ``music_descriptor``: what the dance follows in the music (``MusicDescriptor``,
  ``describe_music``);
* ``timeline``: the beats the body moves to and each frame's pulse phase;
  ``beat_shapes``: the per-beat curves moves are made of;
* ``plan``: the body style and the two-bar phrases, each with a move per half of the body;
* ``lower_moves``: each lower-body move as steps; ``foot_planner``: those steps as
  foot trajectories and weight shifts;
* ``upper_moves``: each upper-body move as wrist targets, elbow poles and torso angles;
* ``limb_ik``: the two-bone IK that legs and arms are solved with;
* ``body_pose``: pelvis, torso, legs and arms put together into joint rotations;
* ``dance``: the entry points, ``procedural_dance`` and ``procedural_dance_with_plan``.
"""

from backend.training.procedural.dance import (
    CONTACT_JOINTS, DancePlan, procedural_dance, procedural_dance_with_plan,
)
from backend.training.procedural.errors import ProceduralError
from backend.training.procedural.music_descriptor import MusicDescriptor, describe_music

__all__ = [
    "CONTACT_JOINTS", "DancePlan", "MusicDescriptor", "ProceduralError", "describe_music", "procedural_dance",
    "procedural_dance_with_plan",
]
