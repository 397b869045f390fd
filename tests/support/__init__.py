"""Helpers the tests share (sample orders, real SMTP and HTTP servers, service drivers), imported from here: fixtures
stay in tests/conftest.py, and no test module imports another."""
