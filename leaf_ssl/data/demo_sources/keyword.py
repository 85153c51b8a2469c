"""Keyword spotting clips: espeak-ng speaking command words, like Speech Commands.

A speaker is an English accent voice combined with a voice variant (e.g. ``en-gb-scotland+f3``).
Each speaker says every word a few times, each rendition at its own speed and pitch drawn
deterministically from the (speaker, word, rendition) name. Split: by speaker, so test voices
are never heard in training.
"""
from __future__ import annotations

import functools
import os
import random
import tempfile

from leaf_ssl.data.audio import decode_audio
from leaf_ssl.data.demo_sources.common import (
    TEST,
    TRAIN,
    LabelledClip,
    TaskPlan,
    is_test_item,
    require_program,
    run_program,
    stable_hash,
    trim_silence,
)

NAME = "keyword"

WORDS = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]
ACCENTS = [
    "en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029", "en-us-nyc",
]
VARIANTS = [
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "klatt", "klatt2", "klatt3", "klatt4",
    "croak", "whisper", "whisperf", "grandma", "grandpa", "Andy", "Annie", "Denis", "Gene", "Lee", "Mike", "anika",
]
SPEED_RANGE_WPM = (110, 230)
PITCH_RANGE = (20, 80)

SCALES = {
    "tiny": {"words": WORDS[:3], "accents": ACCENTS[:2], "variants": VARIANTS[:2], "renditions": 1},
    "small": {"words": WORDS, "accents": ACCENTS, "variants": VARIANTS[:12], "renditions": 2},
    "full": {"words": WORDS, "accents": ACCENTS, "variants": VARIANTS, "renditions": 4},
}


def check_available() -> None:
    """Raises MissingToolError unless espeak-ng is installed."""
    require_program("espeak-ng", "espeak-ng")


def plan(scale: str) -> TaskPlan:
    """One job per speaker; every `is_test_item` speaker in sorted order is a test speaker."""
    settings = SCALES[scale]
    speakers = sorted(f"{accent}+{variant}" for accent in settings["accents"] for variant in settings["variants"])
    jobs = [
        functools.partial(
            render_speaker, speaker, settings["words"], settings["renditions"], TEST if is_test_item(i) else TRAIN
        )
        for i, speaker in enumerate(speakers)
    ]
    return TaskPlan(
        classes=list(settings["words"]),
        jobs=jobs,
        settings=dict(settings, speed_range_wpm=SPEED_RANGE_WPM, pitch_range=PITCH_RANGE),
        split_rule="by speaker (accent+variant): every 5th speaker in sorted order is test; test voices are unseen",
    )


def render_speaker(speaker: str, words: list[str], renditions: int, split: str) -> list[LabelledClip]:
    """All words from one speaker, `renditions` times each, at 16 kHz with silence trimmed."""
    clips = []
    with tempfile.TemporaryDirectory(prefix="leaf_ssl_espeak_") as scratch:
        for label, word in enumerate(words):
            for rendition in range(renditions):
                clip_id = f"{NAME}/{speaker}/{word}/{rendition}"
                variation = random.Random(stable_hash(clip_id))
                path = os.path.join(scratch, "word.wav")
                run_program([
                    "espeak-ng", "-v", speaker,
                    "-s", str(variation.randint(*SPEED_RANGE_WPM)),
                    "-p", str(variation.randint(*PITCH_RANGE)),
                    "-w", path, word,
                ])
                waveform = trim_silence(decode_audio(path))
                if waveform.size:
                    clips.append(LabelledClip(clip_id, waveform, label, split))
    return clips
