"""Finding each AudioSet segment's downloaded file, whatever naming the downloader used.

Accepted names (any audio extension of `leaf_ssl.data.audio.AUDIO_EXTENSIONS` (wav, flac, ogg, and
through ffmpeg m4a, opus, webm...), any case, at any depth below the audio folder),
shown for YTID ``--PJHxphWEs`` and segment 30.000-40.000:

* ``--PJHxphWEs.wav``                    the YouTube id alone;
* ``--PJHxphWEs_30.flac``                id and start (``_30``, ``_30.0``, ``_30.000``, as in
                                         the CSV, or ``_30000`` in milliseconds);
* ``--PJHxphWEs_30_40.ogg``              id, start and end, in the same spellings as the start,
                                         also ``_30-40``;
* ``Y--PJHxphWEs_30.000_40.000.wav``     any of the above with the 'Y' prefix of some downloaders.

YouTube ids contain '-' and '_' (and may begin with them), so a file name is never split on them.
Instead, the folder is walked once to index every audio file by its name without extension, and
each segment looks up the names it could have, most specific first: a name with start and end,
then with start, then the bare id; without the 'Y' prefix before with it. Several files with the
same name (say ``x.wav`` and ``x.flac`` in two folders) resolve to the first by path; the report
counts such rows.
"""
from __future__ import annotations

import os
from collections import Counter, defaultdict

from leaf_ssl.data.audio import AUDIO_EXTENSIONS
from leaf_ssl.data.audioset_metadata import Segment, compact_seconds

DOWNLOADER_PREFIX = "Y"


class AudioFileIndex:
    """Every audio file below a folder, by stem; built by one directory walk.

    Attributes:
      root: the folder walked.
      num_files: audio files indexed.
      other_extensions: files that were not indexed, counted by extension (e.g. {'.m4a': 3}), for
        the hint when nothing matches.
    """

    def __init__(self, root: str | os.PathLike):
        self.root = os.fspath(root)
        self._paths_by_stem: dict[str, list[str]] = defaultdict(list)
        self.other_extensions: Counter[str] = Counter()
        for folder, subfolders, names in os.walk(self.root):
            subfolders.sort()  # a deterministic walk, so ties between same-named files resolve the same way
            for name in names:
                if name.startswith("."):  # hidden files, e.g. macOS '._x.wav' resource forks
                    continue
                stem, extension = os.path.splitext(name)
                if extension.lower() in AUDIO_EXTENSIONS:
                    self._paths_by_stem[stem].append(os.path.join(folder, name))
                else:
                    self.other_extensions[extension.lower() or "(none)"] += 1
        for paths in self._paths_by_stem.values():
            paths.sort()
        self.num_files = sum(len(paths) for paths in self._paths_by_stem.values())
        self._stem_heads: dict[int, set[str]] = {}

    def find(self, segment: Segment) -> list[str]:
        """The files named for `segment` under its most specific matching name (empty if none)."""
        if not (self._has_stem_starting_with(segment.ytid)
                or self._has_stem_starting_with(DOWNLOADER_PREFIX + segment.ytid)):
            return []  # the common case for a partial download, answered without building names
        for stem in candidate_stems(segment):
            if stem in self._paths_by_stem:
                return self._paths_by_stem[stem]
        return []

    def _has_stem_starting_with(self, head: str) -> bool:
        # One set of stem heads per head length: for AudioSet (11-character ids) just two sets.
        heads = self._stem_heads.get(len(head))
        if heads is None:
            heads = self._stem_heads[len(head)] = {stem[:len(head)] for stem in self._paths_by_stem}
        return head in heads


def candidate_stems(segment: Segment) -> list[str]:
    """The file names (without extension) `segment` may have, most specific first."""
    spellings = _bound_spellings(segment)
    with_bounds = [f"_{start}{separator}{end}" for start, end in spellings for separator in ("_", "-")]
    with_start = [f"_{start}" for start, _ in spellings]
    stems = []
    for suffixes in (with_bounds, with_start, [""]):
        for prefix in ("", DOWNLOADER_PREFIX):
            stems.extend(prefix + segment.ytid + suffix for suffix in suffixes)
    return list(dict.fromkeys(stems))


def _bound_spellings(segment: Segment) -> list[tuple[str, str]]:
    """(start, end) spelt alike in each way downloaders write times, without repeats."""
    spellings = [(segment.start_text, segment.end_text), (compact_seconds(segment.start), compact_seconds(segment.end))]
    for style in ("{:.1f}", "{:.3f}"):
        spellings.append((style.format(segment.start), style.format(segment.end)))
    spellings.append((str(round(segment.start * 1000)), str(round(segment.end * 1000))))  # milliseconds
    return list(dict.fromkeys(spellings))
