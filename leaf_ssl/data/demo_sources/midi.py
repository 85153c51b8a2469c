"""A minimal Standard MIDI File writer: single-note events on one channel, timed in milliseconds.

Enough for rendering instrument notes with fluidsynth; written here to avoid a dependency.
"""
from __future__ import annotations

import struct
from typing import NamedTuple

TICKS_PER_QUARTER = 1000
MICROSECONDS_PER_QUARTER = 1_000_000  # with 1000 ticks per quarter: one tick is one millisecond

ALL_SOUND_OFF = 120  # controller number that silences every voice at once, release tails included


class Note(NamedTuple):
    """One note: GM program (0-127), MIDI pitch, velocity, onset and duration in milliseconds."""

    program: int
    pitch: int
    velocity: int
    onset_ms: int
    duration_ms: int


def _variable_length(value: int) -> bytes:
    """MIDI variable-length quantity: 7 bits per byte, high bit set on all but the last."""
    groups = [value & 0x7F]
    value >>= 7
    while value:
        groups.append((value & 0x7F) | 0x80)
        value >>= 7
    return bytes(reversed(groups))


def midi_file(notes: list[Note], *, silence_after_ms: int, channel: int = 0) -> bytes:
    """A format-0 MIDI file playing `notes`; each note is cut off (all sound off)
    `silence_after_ms` after its onset, so no release tail leaks into the next note."""
    events: list[tuple[int, int, bytes]] = []  # (time ms, order within the same time, message)
    for note in notes:
        for value in (note.program, note.pitch, note.velocity):
            if not 0 <= value <= 127:
                raise ValueError(f"MIDI values must be in [0, 127], got {note}")
        events.append((note.onset_ms, 0, bytes([0xC0 | channel, note.program])))
        events.append((note.onset_ms, 1, bytes([0x90 | channel, note.pitch, note.velocity])))
        events.append((note.onset_ms + note.duration_ms, 2, bytes([0x80 | channel, note.pitch, 0])))
        events.append((note.onset_ms + silence_after_ms, 3, bytes([0xB0 | channel, ALL_SOUND_OFF, 0])))
    events.sort(key=lambda event: (event[0], event[1]))

    tempo = MICROSECONDS_PER_QUARTER.to_bytes(3, "big")
    track = bytearray(b"\x00\xff\x51\x03" + tempo)
    now = 0
    for time_ms, _, message in events:
        track += _variable_length(time_ms - now) + message
        now = time_ms
    track += b"\x00\xff\x2f\x00"  # end of track
    header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, TICKS_PER_QUARTER)
    return header + b"MTrk" + struct.pack(">I", len(track)) + bytes(track)
