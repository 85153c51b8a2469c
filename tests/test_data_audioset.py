"""AudioSet preparation: CSV and ontology parsing, file matching, shards, report, resumption, errors."""
import json
import os
import re
import shutil

import numpy as np
import pytest
import soundfile

from leaf_ssl.cli import audioset as audioset_command
from leaf_ssl.data.audio import SAMPLE_RATE
from leaf_ssl.data.audioset import prepare_audioset
from leaf_ssl.data.audioset_files import AudioFileIndex
from leaf_ssl.data.audioset_metadata import AudioSetError, read_segments
from leaf_ssl.data.records import read_clips, read_record_count

ONTOLOGY = [  # a hand-written slice of AudioSet's ontology.json, in an order no CSV follows
    {"id": "/m/0dgw9r", "name": "Human sounds", "restrictions": ["abstract"], "child_ids": ["/m/09x0r"]},
    {"id": "/m/09x0r", "name": "Speech", "restrictions": [], "child_ids": []},
    {"id": "/m/04rlf", "name": "Music", "restrictions": [], "child_ids": []},
    {"id": "/m/0jbk", "name": "Animal", "restrictions": [], "child_ids": ["/m/0bt9lr", "/m/01yrx"]},
    {"id": "/m/0bt9lr", "name": "Dog", "restrictions": [], "child_ids": []},
    {"id": "/m/01yrx", "name": "Cat", "restrictions": [], "child_ids": []},
    {"id": "/m/0k4j", "name": "Car", "restrictions": [], "child_ids": []},
]
SPEECH, MUSIC, ANIMAL, DOG, CAT, CAR = 1, 2, 3, 4, 5, 6

BALANCED_CSV = """\
# Segments csv created Sun Mar  5 10:54:31 2017
# num_ytids=6, num_segs=6, num_unique_labels=6, num_positive_labels=9
# YTID, start_seconds, end_seconds, positive_labels
--PJHxphWEs, 30.000, 32.000, "/m/01yrx"
0_ab-CD_efg, 30.000, 32.000, "/m/09x0r,/m/04rlf"
_30_40abcdE, 30.000, 32.000, "/m/0bt9lr,/m/0jbk"
b3-_c4D5e6f, 0.000, 1.500, "/m/04rlf"
msStyle_0-1, 12.500, 14.500, "/m/0k4j,/m/zzzzz"
missingClip, 30.000, 32.000, "/m/09x0r"
"""
UNBALANCED_CSV = """\
# Segments csv created Sun Mar  5 10:54:36 2017
# YTID, start_seconds, end_seconds, positive_labels

corruptByte, 30.000, 32.000, "/m/09x0r"
emptyFile01, 30.000, 32.000, "/m/09x0r"
shortClip01, 30.000, 32.000, "/m/04rlf"
wholeVideo1, 2.000, 4.000, "/m/0k4j"
--PJHxphWEs, 30.000, 32.000, "/m/01yrx"
tail-_Q2x9k, 10.000, 12.000, "/m/0bt9lr"
"""
EVAL_CSV = """\
# YTID, start_seconds, end_seconds, positive_labels
evalClip_01, 0.000, 2.000, "/m/0k4j"
"""
# clip id -> label indices, for every clip that must reach the shards
GOOD_CLIPS = {
    "--PJHxphWEs_30": [CAT],
    "0_ab-CD_efg_30": [SPEECH, MUSIC],
    "_30_40abcdE_30": [ANIMAL, DOG],
    "b3-_c4D5e6f_0": [MUSIC],
    "msStyle_0-1_12.5": [CAR],  # /m/zzzzz is not in the ontology: dropped
    "wholeVideo1_2": [CAR],
    "tail-_Q2x9k_10": [DOG],
}
STEREO_SECONDS = 1.5


def sine(frequency, seconds, rate, amplitude=0.5):
    t = np.arange(round(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def stereo_expectation(t):
    """The downmix of the stereo clip written below: the mean of its two channels at times `t`."""
    return 0.5 * (0.6 * np.sin(2 * np.pi * 110 * t) + 0.2 * np.sin(2 * np.pi * 220 * t))


def write_fixture(root):
    """Clips in every supported naming, format and failure; the CSVs; the ontology."""
    audio = root / "audio"
    (audio / "nested" / "deeper").mkdir(parents=True)
    soundfile.write(audio / "--PJHxphWEs.wav", sine(440, 2.0, 16000), 16000)  # bare YTID
    soundfile.write(audio / "nested" / "--PJHxphWEs.flac", np.zeros(32000), 16000)  # same stem: the .wav wins
    soundfile.write(audio / "0_ab-CD_efg_30.flac", sine(300, 2.0, 22050), 22050)  # integer start
    soundfile.write(audio / "nested" / "_30_40abcdE_30_32.ogg", sine(500, 2.0, 16000), 16000)  # start_end
    t = np.arange(round(STEREO_SECONDS * 44100)) / 44100
    stereo = np.stack([0.6 * np.sin(2 * np.pi * 110 * t), 0.2 * np.sin(2 * np.pi * 220 * t)], axis=1)
    soundfile.write(audio / "Yb3-_c4D5e6f.wav", stereo, 44100, subtype="FLOAT")  # 'Y' prefix, stereo 44.1 kHz
    soundfile.write(audio / "msStyle_0-1_12500_14500.wav", sine(600, 2.0, 8000), 8000, subtype="PCM_16")  # ms
    soundfile.write(audio / "missingClip_40.wav", sine(440, 2.0, 16000), 16000)  # wrong start: not a match
    (audio / "corruptByte.wav").write_bytes(np.random.default_rng(0).bytes(4000))
    (audio / "emptyFile01.wav").write_bytes(b"")
    soundfile.write(audio / "shortClip01_30.000.flac", sine(440, 0.3, 16000), 16000)
    ramp = np.linspace(0, 1, 6 * 16000, endpoint=False)  # the whole 6 s video: value = time / 6 s
    soundfile.write(audio / "wholeVideo1.flac", ramp, 16000, subtype="PCM_24")
    soundfile.write(audio / "nested" / "deeper" / "Ytail-_Q2x9k_10.000_12.000.wav", sine(700, 2.0, 16000), 16000)
    soundfile.write(audio / "evalClip_01.WAV", sine(800, 2.0, 16000), 16000)
    (audio / "notes.txt").write_text("not audio")
    (audio / "song.mid").write_bytes(b"\0" * 10)
    (root / "balanced.csv").write_text(BALANCED_CSV)
    (root / "unbalanced.csv").write_text(UNBALANCED_CSV)
    (root / "eval.csv").write_text(EVAL_CSV)
    (root / "ontology.json").write_text(json.dumps(ONTOLOGY))
    return root


@pytest.fixture(scope="module")
def fixture_dir(tmp_path_factory):
    return write_fixture(tmp_path_factory.mktemp("audioset"))


def prepare(root, out, *, num_shards=3, workers=1, split_name="train", csvs=("balanced.csv", "unbalanced.csv")):
    return prepare_audioset([root / name for name in csvs], root / "ontology.json", root / "audio", str(out),
                            num_shards, workers=workers, split_name=split_name, progress=False)


@pytest.fixture(scope="module")
def prepared(fixture_dir):
    out = fixture_dir / "out_1_worker"
    return out, prepare(fixture_dir, out)


def shard_bytes(out, split="train"):
    return {name: (out / name).read_bytes() for name in sorted(os.listdir(out))
            if name.startswith(split + "-") and name.endswith(".tfrecord")}


def test_report_counts_every_case(prepared):
    out, report = prepared
    assert report["rows"] == 12 and report["rows_per_csv"] == {
        str(out.parent / "balanced.csv"): 6, str(out.parent / "unbalanced.csv"): 6}
    assert report["duplicate_rows"] == 1
    assert report["clips_found"] == 10
    assert report["missing"]["count"] == 1
    assert (out / "train_missing_ytids.txt").read_text() == "missingClip\n"
    assert report["corrupt"]["count"] == 2 and report["corrupt"]["by_reason"] == {"unreadable": 2}
    assert sorted(item["file"] for item in report["corrupt"]["files"]) == ["corruptByte.wav", "emptyFile01.wav"]
    assert report["too_short"] == {"count": 1, "clips": [
        {"id": "shortClip01_30", "file": "shortClip01_30.000.flac", "seconds": 0.3}]}
    assert report["cut_to_segment"] == 1
    assert report["written"]["clips"] == len(GOOD_CLIPS)
    assert report["rows_with_several_files"] == 1
    assert report["unknown_label_mids"] == {"occurrences": 1, "rows": 1, "mids": {"/m/zzzzz": 1}}
    assert {label["name"]: label["clips"] for label in report["label_counts"]} == {
        "Speech": 1, "Music": 2, "Animal": 1, "Dog": 2, "Cat": 1, "Car": 2}
    assert report["other_files_in_audio_dir"] == {".txt": 1, ".mid": 1}
    assert report["shards"]["count"] == 3 and report["shards"]["built"] == 3
    assert json.loads((out / "train_report.json").read_text()) == report


def test_shards_hold_exactly_the_good_clips_with_ontology_label_ids(prepared):
    out, _ = prepared
    shards = [f"train-0000{i}-of-00003.tfrecord" for i in range(3)]
    assert sorted(os.listdir(out)) == sorted(["labels.json", "reports", "task.json", "train_missing_ytids.txt",
                                              "train_report.json", *shards, *(shard + ".count" for shard in shards)])
    assert sum(read_record_count(str(out / shard)) for shard in shards) == len(GOOD_CLIPS)
    clips = {clip.id: clip for clip in read_clips(str(out / "train-*.tfrecord"))}
    assert {clip_id: clip.labels.tolist() for clip_id, clip in clips.items()} == GOOD_CLIPS
    for clip_id in ("--PJHxphWEs_30", "0_ab-CD_efg_30", "_30_40abcdE_30", "msStyle_0-1_12.5", "tail-_Q2x9k_10"):
        assert clips[clip_id].waveform.size == 2 * SAMPLE_RATE, clip_id
    # Of the two files named --PJHxphWEs, the .wav (first by path) was used, not the silent .flac.
    assert np.abs(clips["--PJHxphWEs_30"].waveform).max() > 0.4
    labels = json.loads((out / "labels.json").read_text())
    assert labels["labels"] == [{"index": i, "mid": entry["id"], "name": entry["name"]}
                                for i, entry in enumerate(ONTOLOGY)]


def test_stereo_44k_clip_is_downmixed_and_resampled(prepared):
    out, _ = prepared
    clip = next(clip for clip in read_clips(str(out)) if clip.id == "b3-_c4D5e6f_0")
    assert clip.waveform.size == round(STEREO_SECONDS * SAMPLE_RATE)
    expected = stereo_expectation(np.arange(clip.waveform.size) / SAMPLE_RATE)
    interior = slice(400, -400)  # away from the resampling filter's edge transients
    np.testing.assert_allclose(clip.waveform[interior], expected[interior], atol=2e-3)


def test_whole_video_file_is_cut_to_its_segment(prepared):
    out, _ = prepared
    clip = next(clip for clip in read_clips(str(out)) if clip.id == "wholeVideo1_2")
    assert clip.waveform.size == 2 * SAMPLE_RATE
    # The file's samples equal time / 6 s, so seconds [2, 4) hold values from 1/3 to 2/3.
    np.testing.assert_allclose(clip.waveform[[0, -1]], [2 / 6, 4 / 6 - 1 / (6 * SAMPLE_RATE)], atol=1e-4)


@pytest.mark.slow
def test_two_workers_write_the_same_shards(fixture_dir, prepared):
    out_1, report_1 = prepared
    out_2 = fixture_dir / "out_2_workers"
    report_2 = prepare(fixture_dir, out_2, workers=2)
    assert shard_bytes(out_2) == shard_bytes(out_1)
    assert without_timing(report_2) == without_timing(report_1)


def without_timing(report):
    return {**report, "shards": {key: value for key, value in report["shards"].items() if key != "build_seconds"}}


def test_rerun_reuses_finished_shards_and_rebuilds_deleted_or_damaged_ones(fixture_dir, tmp_path):
    out = tmp_path / "out"
    prepare(fixture_dir, out)
    first = shard_bytes(out)
    mtimes = {name: os.stat(out / name).st_mtime_ns for name in first}

    rerun = prepare(fixture_dir, out)
    assert rerun["shards"]["built"] == 0 and rerun["shards"]["reused"] == 3
    assert rerun["written"]["clips"] == len(GOOD_CLIPS) and rerun["corrupt"]["count"] == 2
    assert {name: os.stat(out / name).st_mtime_ns for name in first} == mtimes

    os.remove(out / "train-00001-of-00003.tfrecord")
    with open(out / "train-00002-of-00003.tfrecord", "ab") as shard:  # damaged after it was finished
        shard.write(b"junk")
    os.remove(out / "train-00000-of-00003.tfrecord.count")  # a shard without its sidecar is not finished
    rebuilt = prepare(fixture_dir, out)
    assert rebuilt["shards"]["built"] == 3 and rebuilt["shards"]["reused"] == 0
    assert shard_bytes(out) == first
    mtimes = {name: os.stat(out / name).st_mtime_ns for name in first}

    os.remove(out / "train-00001-of-00003.tfrecord")
    rebuilt = prepare(fixture_dir, out)
    assert rebuilt["shards"]["built"] == 1 and rebuilt["shards"]["reused"] == 2
    assert shard_bytes(out) == first
    for untouched in ("train-00000-of-00003.tfrecord", "train-00002-of-00003.tfrecord"):
        assert os.stat(out / untouched).st_mtime_ns == mtimes[untouched]

    (out / "train-00000-of-00003.tfrecord.partial").write_bytes(b"left by a crash")
    resharded = prepare(fixture_dir, out, num_shards=2)  # the 3-shard files must not linger next to the new ones
    assert sorted(name for name in os.listdir(out) if name.startswith("train-")) == [
        "train-00000-of-00002.tfrecord", "train-00000-of-00002.tfrecord.count",
        "train-00001-of-00002.tfrecord", "train-00001-of-00002.tfrecord.count"]
    assert sorted(os.listdir(out / "reports")) == ["train-00000-of-00002.json", "train-00001-of-00002.json"]
    assert resharded["written"]["clips"] == len(GOOD_CLIPS)


def test_eval_split_uses_the_same_label_indices(fixture_dir, prepared, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(prepared[0], out)
    train_shards, labels_json = shard_bytes(out), (out / "labels.json").read_text()

    report = prepare(fixture_dir, out, num_shards=1, split_name="eval", csvs=("eval.csv",))
    assert report["written"]["clips"] == 1
    [clip] = read_clips(str(out / "eval-*.tfrecord"))
    assert clip.id == "evalClip_01_0" and clip.labels.tolist() == [CAR]  # the train split's index for Car
    assert (out / "labels.json").read_text() == labels_json
    assert shard_bytes(out) == train_shards

    other_ontology = tmp_path / "other_ontology.json"
    other_ontology.write_text(json.dumps(ONTOLOGY[::-1]))
    with pytest.raises(AudioSetError, match="different ontology"):
        prepare_audioset([fixture_dir / "eval.csv"], other_ontology, fixture_dir / "audio", str(out), 1,
                         split_name="eval", progress=False)


def test_train_and_test_prepared_separately_make_one_task_json_and_a_probe_task(fixture_dir, prepared, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(prepared[0], out)
    prepare(fixture_dir, out, num_shards=1, split_name="test", csvs=("eval.csv",))
    task = json.loads((out / "task.json").read_text())
    names = [entry["name"] for entry in ONTOLOGY]
    assert {key: value for key, value in task.items() if key != "split_rule"} == {
        "name": "audioset", "classes": names, "num_classes": len(ONTOLOGY), "multi_label": True, "sample_rate": 16000,
        "splits": {
            "train": {"clips": len(GOOD_CLIPS), "seconds": 6 * 2.0 + STEREO_SECONDS, "shards": "train-*.tfrecord",
                      "num_shards": 3, "segment_csvs": ["balanced.csv", "unbalanced.csv"]},
            "test": {"clips": 1, "seconds": 2.0, "shards": "test-*.tfrecord", "num_shards": 1,
                     "segment_csvs": ["eval.csv"]},
        }}

    test_first = tmp_path / "test_first"  # the other order, with a run in between that lists test alone
    prepare(fixture_dir, test_first, num_shards=1, split_name="test", csvs=("eval.csv",))
    assert list(json.loads((test_first / "task.json").read_text())["splits"]) == ["test"]
    prepare(fixture_dir, test_first)
    assert json.loads((test_first / "task.json").read_text()) == task

    from leaf_ssl.evaluation.tasks import SkipLog, resolve_task
    probe_task = resolve_task(f"demo:{out}")
    assert (probe_task.name, probe_task.classes, probe_task.multi_label) == ("audioset", names, True)
    assert (probe_task.num_clips("train"), probe_task.num_clips("test")) == (len(GOOD_CLIPS), 1)
    skips = SkipLog()
    assert {clip.id: list(clip.labels) for clip in probe_task.clips("train", skips)} == GOOD_CLIPS
    assert [(clip.id, clip.labels) for clip in probe_task.clips("test", skips)] == [("evalClip_01_0", (CAR,))]
    assert skips.count == 0


@pytest.mark.parametrize("file_name", [
    "a-_b_c-30_d.wav", "a-_b_c-30_d_30.flac", "a-_b_c-30_d_30.0.ogg", "a-_b_c-30_d_30.000_40.000.wav",
    "a-_b_c-30_d_30_40.wav", "a-_b_c-30_d_30-40.wav", "a-_b_c-30_d_30000_40000.wav", "Ya-_b_c-30_d.wav",
    "Ya-_b_c-30_d_30.000_40.000.flac", "sub/dir/a-_b_c-30_d.FLAC",
])
def test_every_documented_naming_finds_the_clip(tmp_path, file_name):
    csv = tmp_path / "segments.csv"
    csv.write_text('a-_b_c-30_d, 30.000, 40.000, "/m/09x0r"\nother, 30.000, 40.000, "/m/09x0r"\n')
    path = tmp_path / "audio" / file_name
    path.parent.mkdir(parents=True)
    path.write_bytes(b"")
    segment, other = read_segments(csv)
    index = AudioFileIndex(tmp_path / "audio")
    assert index.find(segment) == [str(path)]
    assert index.find(other) == []


@pytest.mark.parametrize("file_name", [
    "a-_b_c-30_d_31.wav", "a-_b_c-30_d_30_41.wav", "b-_b_c-30_d.wav", "a-_b_c-30.wav", "a-_b_c-30_d.txt",
    ".a-_b_c-30_d.wav", "Xa-_b_c-30_d.wav",
])
def test_names_of_other_clips_or_segments_do_not_match(tmp_path, file_name):
    (tmp_path / "segments.csv").write_text('a-_b_c-30_d, 30.000, 40.000, "/m/09x0r"\n')
    (tmp_path / "audio").mkdir()
    (tmp_path / "audio" / file_name).write_bytes(b"")
    [segment] = read_segments(tmp_path / "segments.csv")
    assert AudioFileIndex(tmp_path / "audio").find(segment) == []


def test_segment_csv_rows_are_parsed(fixture_dir):
    first = read_segments(fixture_dir / "balanced.csv")[0]
    assert (first.ytid, first.start, first.end, first.start_text, first.mids) == (
        "--PJHxphWEs", 30.0, 32.0, "30.000", ("/m/01yrx",))
    assert first.where == f"{fixture_dir / 'balanced.csv'}:4"
    assert read_segments(fixture_dir / "balanced.csv")[1].mids == ("/m/09x0r", "/m/04rlf")


@pytest.mark.parametrize("row, problem", [
    ('abc, 30.000, 40.000\n', "expected 4 fields"),
    ('abc, 30.000, 40.000, "/m/a", extra\n', "expected 4 fields"),
    ('abc, thirty, 40.000, "/m/a"\n', "'thirty' is not a number"),
    ('abc, 40.000, 30.000, "/m/a"\n', "not a non-empty range"),
    ('a/b, 30.000, 40.000, "/m/a"\n', "not a YouTube id"),
])
def test_malformed_row_is_an_error_naming_file_and_line(tmp_path, row, problem):
    csv = tmp_path / "segments.csv"
    csv.write_text('# YTID, start_seconds, end_seconds, positive_labels\nok, 1, 2, "/m/a"\n' + row)
    with pytest.raises(AudioSetError, match=re.escape(f"{csv}:3: ") + f".*{problem}"):
        read_segments(csv)


def test_unusable_inputs_are_errors_that_name_the_problem(fixture_dir, tmp_path):
    root = fixture_dir
    csvs, ontology, audio = [root / "balanced.csv"], root / "ontology.json", root / "audio"

    def error_of(**changes):
        args = {"segment_csvs": csvs, "ontology": ontology, "audio_dir": audio, "out_dir": str(tmp_path / "out"),
                "num_shards": 2, **changes}
        with pytest.raises(AudioSetError) as error:
            prepare_audioset(**args, progress=False)
        return str(error.value)

    assert "segments CSV" in error_of(segment_csvs=[root / "absent.csv"])
    assert "ontology file" in error_of(ontology=root / "absent.json")
    assert "audio folder" in error_of(audio_dir=root / "absent")
    assert "--num_shards must be at least 1" in error_of(num_shards=0)
    duplicated = tmp_path / "duplicated.json"
    duplicated.write_text(json.dumps(ONTOLOGY + ONTOLOGY[:1]))
    assert "appears twice" in error_of(ontology=duplicated)
    badly_named = tmp_path / "badly_named"
    badly_named.mkdir()
    soundfile.write(badly_named / "clip 1.wav", sine(440, 1.0, 16000), 16000)
    (badly_named / "--PJHxphWEs.mid").write_bytes(b"\0")
    hint = error_of(audio_dir=badly_named)
    assert "--PJHxphWEs_30.000.flac" in hint and "Y--PJHxphWEs.wav" in hint and "1 .mid" in hint
    assert not (tmp_path / "out").exists()  # nothing written before the inputs are known to be usable


def test_command_line_prints_a_summary_and_exits_2_on_errors(fixture_dir, tmp_path, capsys):
    common = ["--ontology", str(fixture_dir / "ontology.json"), "--audio_dir", str(fixture_dir / "audio"),
              "--out", str(tmp_path / "out"), "--workers", "1"]
    assert audioset_command.main(["--segments", str(fixture_dir / "eval.csv"), "--num_shards", "1", "--split_name", "eval",
                          *common]) == 0
    printed = capsys.readouterr().out
    assert "AudioSet eval: 1 rows (0 duplicate), 1 clips found, 0 missing" in printed
    assert "most frequent labels: Car 1" in printed
    assert "splits ['eval']; to probe on AudioSet, also prepare 'train' and 'test' here" in printed

    assert audioset_command.main(["--segments", str(fixture_dir / "eval.csv"), "--num_shards", "0", *common]) == 2
    assert "error: --num_shards must be at least 1" in capsys.readouterr().err
