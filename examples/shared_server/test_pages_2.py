import urllib.error

import pytest


@pytest.mark.parametrize("name", ["missing.txt", "nothing/here.html", "gone.css"])
def test_a_missing_page_is_a_404(fetch, name):
    with pytest.raises(urllib.error.HTTPError, match="404"):
        fetch(name)
