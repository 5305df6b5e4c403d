collect_ignore = ["ignored_by_conftest.py"]
