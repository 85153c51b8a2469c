"""Instrument family clips: single notes of the FluidR3 General MIDI soundfont, like NSynth.

General MIDI's 128 programs come in 16 families of 8 (program // 8); the label is the family.
Each job renders one family: a generated MIDI file plays every (program, pitch, velocity)
note in turn through fluidsynth (reverb and chorus off, every voice silenced before the next
note), and the rendering is cut into one clip per note. Split: by pitch, so test notes are at
pitches never heard in training, while every program appears in both splits.
"""
from __future__ import annotations

import functools
import os
import tempfile

import numpy as np

from leaf_ssl.data.audio import decode_audio
from leaf_ssl.data.demo_sources.common import (
    TEST,
    TRAIN,
    LabelledClip,
    MissingToolError,
    TaskPlan,
    require_program,
    run_program,
)
from leaf_ssl.data.demo_sources.midi import Note, midi_file

NAME = "instrument"

SOUNDFONT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
FAMILIES = [
    "piano", "chromatic_percussion", "organ", "guitar", "bass", "strings", "ensemble", "brass",
    "reed", "pipe", "synth_lead", "synth_pad", "synth_effects", "ethnic", "percussive", "sound_effects",
]
PROGRAMS_PER_FAMILY = 8

HOLD_MS = 1000  # key held down
CLIP_MS = 1500  # clip length: the hold plus the start of the release
SLOT_MS = 2000  # note spacing; all sound is cut at CLIP_MS + 100, so slots never overlap
RENDER_RATE = 32000  # fluidsynth renders at twice 16 kHz; resampling then low-passes cleanly
GAIN = 1.0
SILENT_RMS = 1e-4  # some programs are inaudible at extreme pitches: such notes are dropped

SCALES = {
    "tiny": {"families": ["piano", "brass"], "programs_per_family": 2, "pitches": [48, 60, 72], "velocities": [100]},
    "small": {"families": FAMILIES, "programs_per_family": 8, "pitches": list(range(36, 85, 6)), "velocities": [100]},
    "full": {"families": FAMILIES, "programs_per_family": 8, "pitches": list(range(24, 97, 4)),
             "velocities": [75, 115]},
}


def check_available() -> None:
    """Raises MissingToolError unless fluidsynth and the FluidR3 soundfont are installed."""
    require_program("fluidsynth", "fluidsynth")
    if not os.path.isfile(SOUNDFONT):
        raise MissingToolError(
            f"soundfont {SOUNDFONT} not found: install it with `sudo apt-get install fluid-soundfont-gm`"
        )


def test_pitches(pitches: list[int]) -> list[int]:
    """The held-out pitches: every 3rd of the sorted list, from the 2nd, so both splits span the range."""
    return [pitch for i, pitch in enumerate(sorted(pitches)) if i % 3 == 1]


def plan(scale: str) -> TaskPlan:
    """One job per family."""
    settings = SCALES[scale]
    held_out = test_pitches(settings["pitches"])
    jobs = [
        functools.partial(
            render_family,
            label,
            FAMILIES.index(family),
            settings["programs_per_family"],
            settings["pitches"],
            settings["velocities"],
            held_out,
        )
        for label, family in enumerate(settings["families"])
    ]
    return TaskPlan(
        classes=list(settings["families"]),
        jobs=jobs,
        settings=dict(settings, hold_ms=HOLD_MS, clip_ms=CLIP_MS, render_rate=RENDER_RATE, gain=GAIN),
        split_rule=f"by pitch: MIDI pitches {held_out} are test only; every program is in both splits",
    )


def render_family(
    label: int,
    gm_family: int,
    programs_per_family: int,
    pitches: list[int],
    velocities: list[int],
    held_out_pitches: list[int],
) -> list[LabelledClip]:
    """Renders every note of one GM family's first `programs_per_family` programs."""
    programs = range(gm_family * PROGRAMS_PER_FAMILY, gm_family * PROGRAMS_PER_FAMILY + programs_per_family)
    notes = [
        Note(program, pitch, velocity, onset_ms=i * SLOT_MS, duration_ms=HOLD_MS)
        for i, (program, pitch, velocity) in enumerate(
            (program, pitch, velocity) for program in programs for pitch in pitches for velocity in velocities
        )
    ]
    with tempfile.TemporaryDirectory(prefix="leaf_ssl_fluidsynth_") as scratch:
        midi_path, wav_path = os.path.join(scratch, "notes.mid"), os.path.join(scratch, "notes.wav")
        with open(midi_path, "wb") as midi:
            midi.write(midi_file(notes, silence_after_ms=CLIP_MS + 100))
        run_program([
            "fluidsynth", "-n", "-i", "-q", "-R", "0", "-C", "0", "-g", str(GAIN),
            "-r", str(RENDER_RATE), "-F", wav_path, SOUNDFONT, midi_path,
        ])
        rendering = decode_audio(wav_path)

    clips = []
    samples_per_ms = 16
    for note in notes:
        start = note.onset_ms * samples_per_ms
        waveform = rendering[start : start + CLIP_MS * samples_per_ms]
        if waveform.size == 0 or np.sqrt(np.mean(np.square(waveform))) < SILENT_RMS:
            continue
        split = TEST if note.pitch in held_out_pitches else TRAIN
        clip_id = f"{NAME}/program{note.program:03d}/pitch{note.pitch:03d}/velocity{note.velocity:03d}"
        clips.append(LabelledClip(clip_id, waveform, label, split))
    return clips
