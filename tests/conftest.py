"""Shared pytest fixtures, imported here so that every test file can use them."""

from tests.server_fixtures import backend_server  # noqa: F401
