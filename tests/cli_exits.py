"""How the tests check a command's exit: its code and the one `error:` line it printed (`leaf_ssl.cli.exits`)."""
import re

import pytest


def assert_exits(capsys, code: int, pattern: str, main, argv: list[str]) -> None:
    """`main(argv)` exits with `code` and prints one stderr line that starts with `error:` and matches `pattern`."""
    with pytest.raises(SystemExit) as stop:
        main(argv)
    lines = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == code, (stop.value.code, lines)
    assert lines and lines[-1].startswith("error: ") and re.search(pattern, lines[-1]), lines
