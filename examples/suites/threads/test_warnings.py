import warnings

import pytest
from conftest import meet, quiet


@pytest.mark.filterwarnings("error::UserWarning")
def test_an_error_here():
    with pytest.raises(UserWarning):
        warnings.warn("raised as an error here")


@pytest.mark.filterwarnings("ignore:quiet")
def test_ignored_here():
    warnings.warn("quiet please")


def test_shown_once_per_test():
    for _ in range(3):
        warnings.warn("shown once for test_shown_once_per_test")


@pytest.mark.parametrize("n", range(2))
def test_silences_its_own_warnings(n):
    with quiet():
        meet()  # the tests beside it warn between these two meetings
        warnings.warn(f"silenced in test {n}")
        meet()


@pytest.mark.parametrize("n", range(2))
def test_warns_while_others_silence_theirs(n):
    meet()
    warnings.warn(f"not silenced in test {n}")
    meet()
