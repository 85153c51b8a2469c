"""Audio decoding: every kind of broken or unusual file gets its documented treatment."""
import numpy as np
import pytest
import soundfile

from leaf_ssl.data.audio import SAMPLE_RATE, BadAudioError, decode_audio, prepare_waveform


def sine(frequency, seconds, rate, amplitude=0.5):
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def dominant_frequency(waveform, rate):
    spectrum = np.abs(np.fft.rfft(waveform))
    return np.fft.rfftfreq(len(waveform), 1 / rate)[np.argmax(spectrum)]


@pytest.mark.parametrize("extension", ["wav", "flac", "ogg"])
def test_stereo_44k_is_downmixed_and_resampled(tmp_path, extension):
    left, right = sine(440, 1.0, 44100), sine(1000, 1.0, 44100, amplitude=0.1)
    path = tmp_path / f"stereo.{extension}"
    soundfile.write(path, np.stack([left, right], axis=1), 44100)

    waveform = decode_audio(path)

    assert waveform.dtype == np.float32 and waveform.ndim == 1
    assert len(waveform) == SAMPLE_RATE  # 44100 frames at ratio 160/441
    assert dominant_frequency(waveform, SAMPLE_RATE) == pytest.approx(440, abs=2)
    # The mean of the channels: the louder 440 Hz channel at half its amplitude.
    assert np.max(np.abs(waveform)) == pytest.approx(0.25 + 0.05, abs=0.03)


def test_8k_int16_wav_is_upsampled(tmp_path):
    path = tmp_path / "phone.wav"
    soundfile.write(path, sine(300, 0.5, 8000), 8000, subtype="PCM_16")
    waveform = decode_audio(path)
    assert len(waveform) == 8000
    assert dominant_frequency(waveform, SAMPLE_RATE) == pytest.approx(300, abs=3)


def test_empty_file_is_rejected(tmp_path):
    path = tmp_path / "empty.wav"
    soundfile.write(path, np.zeros((0, 1), np.float32), SAMPLE_RATE)
    with pytest.raises(BadAudioError) as error:
        decode_audio(path)
    assert error.value.reason == "empty" and str(path) in str(error.value)


def test_nan_samples_are_rejected(tmp_path):
    path = tmp_path / "nan.wav"
    soundfile.write(path, np.array([0.1, np.nan, 0.2, np.inf], np.float32), SAMPLE_RATE, subtype="FLOAT")
    with pytest.raises(BadAudioError) as error:
        decode_audio(path)
    assert error.value.reason == "non-finite samples"


@pytest.mark.parametrize("content", [b"", b"this is not audio at all" * 10], ids=["zero-bytes", "text"])
def test_non_audio_is_rejected(tmp_path, content):
    path = tmp_path / "fake.wav"
    path.write_bytes(content)
    with pytest.raises(BadAudioError) as error:
        decode_audio(path)
    assert error.value.reason.startswith("unreadable")


def test_missing_file_is_rejected(tmp_path):
    with pytest.raises(BadAudioError, match="missing.wav"):
        decode_audio(tmp_path / "missing.wav")


def test_truncated_wav_keeps_the_frames_that_remain(tmp_path):
    path = tmp_path / "whole.wav"
    soundfile.write(path, sine(440, 1.0, SAMPLE_RATE), SAMPLE_RATE, subtype="PCM_16")
    data = path.read_bytes()
    truncated = tmp_path / "truncated.wav"
    truncated.write_bytes(data[: len(data) // 2])
    assert 0.45 * SAMPLE_RATE < len(decode_audio(truncated)) < 0.55 * SAMPLE_RATE


@pytest.mark.parametrize("keep_bytes", [30, None], ids=["header-only", "third-of-flac"])
def test_truncated_beyond_repair_is_rejected(tmp_path, keep_bytes):
    path = tmp_path / "whole.flac"
    noise = 0.01 * np.random.default_rng(0).standard_normal(44100).astype(np.float32)
    soundfile.write(path, sine(440, 1.0, 44100, amplitude=0.3) + noise, 44100)
    data = path.read_bytes()
    truncated = tmp_path / "truncated.flac"
    truncated.write_bytes(data[: keep_bytes or len(data) // 3])
    with pytest.raises(BadAudioError):
        decode_audio(truncated)


def test_out_of_range_float_is_clipped():
    waveform = prepare_waveform(np.array([0.5, 1.7, -3.0], np.float32), SAMPLE_RATE)
    np.testing.assert_array_equal(waveform, np.array([0.5, 1.0, -1.0], np.float32))


def test_integer_arrays_are_scaled_by_their_range():
    waveform = prepare_waveform(np.array([-32768, 0, 16384], np.int16), SAMPLE_RATE)
    np.testing.assert_array_equal(waveform, np.array([-1.0, 0.0, 0.5], np.float32))


def test_multichannel_array_is_averaged():
    stereo = np.array([[0.2, 0.4], [-0.2, 0.0]], np.float32)
    np.testing.assert_allclose(prepare_waveform(stereo, SAMPLE_RATE), [0.3, -0.1], rtol=1e-6)
