"""Language identification clips: Asterisk's recorded telephony prompts in five languages, like VoxForge.

The asterisk-core-sounds-*-wav packages hold 8 kHz prompts read by one professional voice per
language, so this task cannot separate language from speaker: it is reported as language id,
but a probe may also solve it by voice. Split: by prompt name (e.g. ``digits/7``), the same for
every language, so test prompts are sentences never heard in training in any language. The
``silence/`` prompts are left out (they hold no speech).
"""
from __future__ import annotations

import functools
import os

from leaf_ssl.data.audio import BadAudioError, decode_audio
from leaf_ssl.data.demo_sources.common import (
    TEST,
    TRAIN,
    LabelledClip,
    MissingToolError,
    TaskPlan,
    is_test_item,
    stable_hash,
    trim_silence,
)

NAME = "language"

SOUNDS_DIR = "/usr/share/asterisk/sounds"
LANGUAGES = ["en", "es", "fr", "it", "ru"]
EXCLUDED_FOLDERS = ("silence",)
MIN_SECONDS = 0.3  # shorter prompts (after trimming) are single clicks or breaths
PROMPTS_PER_JOB = 40
TEST_FRACTION = 0.2

SCALES = {
    "tiny": {"languages": LANGUAGES, "prompts_per_language": 5},
    "small": {"languages": LANGUAGES, "prompts_per_language": 150},
    "full": {"languages": LANGUAGES, "prompts_per_language": None},  # None: every prompt
}


def check_available() -> None:
    """Raises MissingToolError unless every language's prompt package is installed."""
    for language in LANGUAGES:
        if not os.path.isdir(os.path.join(SOUNDS_DIR, language)):
            raise MissingToolError(
                f"Asterisk prompts for {language!r} not found in {SOUNDS_DIR}/{language}: install them with "
                f"`sudo apt-get install asterisk-core-sounds-{language}-wav`"
            )


def prompt_names(language: str) -> list[str]:
    """Sorted prompt names (relative paths without '.wav') of one language."""
    root = os.path.join(SOUNDS_DIR, language)
    names = []
    for folder, subfolders, files in os.walk(root, followlinks=True):
        subfolders[:] = sorted(sub for sub in subfolders if sub not in EXCLUDED_FOLDERS)
        relative = os.path.relpath(folder, root)
        names += [os.path.normpath(os.path.join(relative, f[:-4])) for f in files if f.endswith(".wav")]
    return sorted(names)


def plan(scale: str) -> TaskPlan:
    """Jobs of up to PROMPTS_PER_JOB prompts; a per-language sample keeps the test fraction."""
    settings = SCALES[scale]
    languages = settings["languages"]
    names_by_language = {language: prompt_names(language) for language in languages}
    all_names = sorted(set().union(*names_by_language.values()))
    test_names = {name for i, name in enumerate(all_names) if is_test_item(i)}

    jobs = []
    for label, language in enumerate(languages):
        for split in (TRAIN, TEST):
            names = [name for name in names_by_language[language] if (name in test_names) == (split == TEST)]
            names.sort(key=lambda name: (stable_hash(f"{language}/{name}"), name))  # a stable random sample
            wanted = settings["prompts_per_language"]
            if wanted is not None:
                names = names[: max(1, round(wanted * (TEST_FRACTION if split == TEST else 1 - TEST_FRACTION)))]
            for start in range(0, len(names), PROMPTS_PER_JOB):
                chunk = sorted(names[start : start + PROMPTS_PER_JOB])
                jobs.append(functools.partial(read_prompts, language, chunk, label, split))
    return TaskPlan(
        classes=list(languages),
        jobs=jobs,
        settings=dict(settings, min_seconds=MIN_SECONDS, test_fraction=TEST_FRACTION),
        split_rule="by prompt name across languages: every 5th name in sorted order is test; one speaker per "
        "language, so language and voice are confounded",
    )


def read_prompts(language: str, names: list[str], label: int, split: str) -> list[LabelledClip]:
    """Decodes prompts to 16 kHz with silence trimmed; unreadable or too-short ones are dropped."""
    clips = []
    for name in names:
        try:
            waveform = trim_silence(decode_audio(os.path.join(SOUNDS_DIR, language, name + ".wav")))
        except BadAudioError:
            continue
        if waveform.size >= MIN_SECONDS * 16000:
            clips.append(LabelledClip(f"{NAME}/{language}/{name}", waveform, label, split))
    return clips
