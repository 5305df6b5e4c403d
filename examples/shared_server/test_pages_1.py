import pytest


@pytest.mark.parametrize("attempt", range(6))
def test_the_server_answers(fetch, attempt):
    assert fetch("greeting.txt") == "hello from the one server"
