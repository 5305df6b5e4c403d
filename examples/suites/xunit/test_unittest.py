import os
import unittest


def record(event):
    path = os.environ.get("PARPROC_EVENTS")
    if path:
        with open(path, "a") as events:
            events.write(f"{event} {os.getpid()}\n")


class TestWithSetUpClass(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        record("setup unittest_class")
        cls.resource = "ready"

    @classmethod
    def tearDownClass(cls):
        record("teardown unittest_class")

    def setUp(self):
        self.value = 41

    def test_uses_class_resource(self):
        self.assertEqual(self.resource, "ready")

    def test_uses_setup(self):
        self.assertEqual(self.value + 1, 42)

    def test_fails(self):
        self.assertEqual(self.value, 0)

    @unittest.skip("skipped by unittest")
    def test_skipped(self):
        pass

    @unittest.expectedFailure
    def test_expected_failure(self):
        self.assertEqual(1, 2)

    def test_subtests_style(self):
        for n in range(3):
            self.assertLess(n, 3)
