"""A large module of parametrized tests in classes, some of them checking warnings with
``pytest.warns``: the shape of packaging's suite, where the threading backend's cost per test
once grew with the size of the class (its source was searched again for every test)."""

import warnings

import pytest

VERSIONS = [
    f"{major}.{minor}.{patch}" for major in range(3) for minor in range(10) for patch in range(10)
]


def parse(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def legacy_parse(text: str) -> tuple[int, ...]:
    warnings.warn(f"legacy version {text}", DeprecationWarning, stacklevel=2)
    return parse(text)


class TestParse:
    @pytest.mark.parametrize("text", VERSIONS)
    def test_round_trip(self, text: str) -> None:
        assert ".".join(map(str, parse(text))) == text

    @pytest.mark.parametrize("text", VERSIONS)
    def test_ordering(self, text: str) -> None:
        assert parse(text) < (3, 0, 0)


class TestLegacy:
    @pytest.mark.parametrize("text", VERSIONS)
    def test_warns(self, text: str) -> None:
        with pytest.warns(DeprecationWarning, match="legacy version"):
            assert legacy_parse(text) == parse(text)

    @pytest.mark.parametrize("extras", [["a"], ["a", "b"], []])
    def test_a_parameter_named_like_a_fixture(self, extras: list[str]) -> None:
        # ``extras`` is pytest-html's fixture too: as a parameter it is only a value
        assert len(extras) < 3
