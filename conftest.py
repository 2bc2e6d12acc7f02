# Shared fixtures for every test suite in the repository.
pytest_plugins = ["bos_common.testing"]
