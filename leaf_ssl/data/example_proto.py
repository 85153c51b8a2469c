"""`tf.train.Example` decoded from its protobuf wire format, without TensorFlow or protobuf.

The messages involved (tensorflow/core/example/{example,feature}.proto):

    Example  { Features features = 1; }
    Features { map<string, Feature> feature = 1; }      // each entry: { string key = 1; Feature value = 2; }
    Feature  { oneof kind { BytesList bytes_list = 1; FloatList float_list = 2; Int64List int64_list = 3; } }
    BytesList { repeated bytes value = 1; }  FloatList { repeated float value = 1; }  Int64List { repeated int64 value = 1; }

Byte strings come back as zero-copy `memoryview`s of the record (a clip's audio is most of it).
"""
from __future__ import annotations

import struct
from typing import Iterator

_VARINT, _FIXED64, _LENGTH_DELIMITED, _FIXED32 = 0, 1, 2, 5


class ExampleDecodeError(ValueError):
    """Bytes that are not a well-formed Example."""


def _varint(buffer: memoryview, position: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if position >= len(buffer) or shift > 63:
            raise ExampleDecodeError("truncated or overlong varint")
        byte = buffer[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, position
        shift += 7


def _fields(buffer: memoryview) -> Iterator[tuple[int, int, object]]:
    """(field number, wire type, value) of each field of one message: an int for varints, a memoryview
    otherwise."""
    position = 0
    while position < len(buffer):
        key, position = _varint(buffer, position)
        number, wire_type = key >> 3, key & 7
        if wire_type == _VARINT:
            value, position = _varint(buffer, position)
        elif wire_type in (_FIXED64, _FIXED32, _LENGTH_DELIMITED):
            if wire_type == _LENGTH_DELIMITED:
                size, position = _varint(buffer, position)
            else:
                size = 8 if wire_type == _FIXED64 else 4
            if position + size > len(buffer):
                raise ExampleDecodeError(f"field {number} runs past the end of its message")
            value = buffer[position:position + size]
            position += size
        else:
            raise ExampleDecodeError(f"field {number} has wire type {wire_type}, not one an Example uses")
        if number == 0:
            raise ExampleDecodeError("field number 0")
        yield number, wire_type, value


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _values(kind: int, wire_type: int, value) -> list:
    """The values of one `value` field of a Bytes/Float/Int64List (packed or not)."""
    if kind == 1:
        if wire_type != _LENGTH_DELIMITED:
            raise ExampleDecodeError("a bytes_list value is not a byte string")
        return [value]
    if kind == 3:
        if wire_type == _VARINT:
            return [_signed(value)]
        values, position = [], 0
        while position < len(value):
            number, position = _varint(value, position)
            values.append(_signed(number))
        return values
    if wire_type == _FIXED32:
        return [struct.unpack("<f", value)[0]]
    if wire_type != _LENGTH_DELIMITED or len(value) % 4:
        raise ExampleDecodeError("a float_list value is neither a float nor packed floats")
    return list(struct.unpack(f"<{len(value) // 4}f", value))


def _feature(buffer: memoryview) -> list:
    values: list = []
    for kind, wire_type, value in _fields(buffer):
        if kind not in (1, 2, 3) or wire_type != _LENGTH_DELIMITED:
            raise ExampleDecodeError(f"a Feature holds field {kind}, not a bytes, float or int64 list")
        for number, item_type, item in _fields(value):
            if number == 1:
                values.extend(_values(kind, item_type, item))
    return values


def decode_example(serialized: bytes) -> dict[str, list]:
    """{feature name: its values}: memoryviews for bytes lists, ints for int64 lists, floats for float
    lists. A later entry of the same name replaces an earlier one, as protobuf's map parsing does.

    Raises:
      ExampleDecodeError: the bytes are not a well-formed Example.
    """
    features: dict[str, list] = {}
    for number, wire_type, value in _fields(memoryview(serialized)):
        if number != 1:
            continue  # unknown fields are skipped, as protobuf does
        if wire_type != _LENGTH_DELIMITED:
            raise ExampleDecodeError("Example.features is not a message")
        for entry_number, entry_type, entry in _fields(value):
            if entry_number != 1:
                continue
            if entry_type != _LENGTH_DELIMITED:
                raise ExampleDecodeError("a feature map entry is not a message")
            name, feature = "", memoryview(b"")
            for field, field_type, field_value in _fields(entry):
                if field_type != _LENGTH_DELIMITED:
                    raise ExampleDecodeError("a feature map entry's key or value is not length-delimited")
                if field == 1:
                    try:
                        name = bytes(field_value).decode("utf-8")
                    except UnicodeDecodeError as error:
                        raise ExampleDecodeError(f"a feature name is not UTF-8: {error}") from error
                elif field == 2:
                    feature = field_value
            features[name] = _feature(feature)
    return features
