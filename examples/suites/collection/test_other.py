def test_other_one():
    pass


def test_other_two():
    pass
