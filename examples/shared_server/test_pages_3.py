def test_the_folder_lists_the_greeting(fetch):
    assert "greeting.txt" in fetch("")


def test_every_worker_reaches_the_same_server(fetch, server_url):
    assert server_url.startswith("http://127.0.0.1:")
    assert fetch("greeting.txt").startswith("hello")
