import warnings

import pytest


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
