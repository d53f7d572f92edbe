"""Fixtures of the MCP skill's tests: a real SDK server on loopback, and a clean slate."""

from __future__ import annotations

import sys

import pytest

from apps.skills.builtins.mcp_client import tools_cache_clear
from tests.fakes.mcp_server import MCP_TOKEN, FakeMcpHttpServer


@pytest.fixture
def mcp_clean(settings):
    """stdio servers may run this Python; no tool list is cached from another test."""
    settings.MCP_STDIO_COMMANDS = [sys.executable]
    tools_cache_clear()
    yield
    tools_cache_clear()


@pytest.fixture
def mcp_http():
    server = FakeMcpHttpServer(token=MCP_TOKEN).start()
    yield server
    server.stop()
