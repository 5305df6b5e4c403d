import pytest


def test_alpha():
    pass


def test_beta():
    assert False


@pytest.mark.smoke
def test_gamma():
    pass


@pytest.mark.smoke
@pytest.mark.parametrize("n", [1, 2, 3])
def test_delta(n):
    assert n != 2
