"""Helpers the tests import (conftest.py holds only fixtures and hooks)."""
