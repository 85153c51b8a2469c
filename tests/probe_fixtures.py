"""Synthetic probe tasks written as folders of audio files, for the probe tests."""
from pathlib import Path

import numpy as np
import soundfile

TONE_CLASSES = {"low": 250.0, "mid": 1000.0, "high": 4000.0}


def tone_clip(frequency: float, seconds: float, rng: np.random.Generator, sample_rate: int = 16000) -> np.ndarray:
    """A tone of random phase and level, with 5% of white noise: what separates classes is the pitch."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    tone = np.sin(2 * np.pi * frequency * t + rng.uniform(0, 2 * np.pi))
    return (rng.uniform(0.1, 0.5) * (tone + 0.05 * rng.standard_normal(t.size))).astype(np.float32)


def write_tone_task(root: Path, *, train_per_class: int = 8, test_per_class: int = 4, seed: int = 0) -> Path:
    """root/{train,test}/<class>/<n>.wav; clip lengths 0.5 to 2.3 s, so segments are cut and padded."""
    rng = np.random.default_rng(seed)
    for split, count in (("train", train_per_class), ("test", test_per_class)):
        for name, frequency in TONE_CLASSES.items():
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for index in range(count):
                clip = tone_clip(frequency, rng.uniform(0.5, 2.3), rng)
                soundfile.write(folder / f"{index}.wav", clip, 16000, subtype="PCM_16")
    return root
