import logging
import sys
import warnings

import pytest
from conftest import meet, record


@pytest.mark.parametrize("n", range(50))
def test_prints(n, tmp_path):
    me = f"test_prints[{n}]"
    (tmp_path / "owner").write_text(me)
    record(f"tmp_path {me} {tmp_path}")
    for line in range(500):
        print(f"{me} out {line}")
        print(f"{me} err {line}", file=sys.stderr)
    if n < 48:
        meet()
    for line in range(500, 1000):
        print(f"{me} out {line}")
        print(f"{me} err {line}", file=sys.stderr)
    logging.getLogger("suite").warning("%s log", me)
    warnings.warn(f"{me} warns")
    assert (tmp_path / "owner").read_text() == me
    assert n % 10, "every tenth test fails, to show its captured output"


@pytest.mark.parametrize("n", range(8))
def test_capsys_is_per_test(n, capsys):
    print(f"capsys {n}")
    meet()
    print(f"capsys {n} again")
    assert capsys.readouterr().out == f"capsys {n}\ncapsys {n} again\n"


def test_detailed_assertion_message():
    assert [1, 2, 3] == [1, 2, 4]
