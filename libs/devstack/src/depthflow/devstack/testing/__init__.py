"""Test fixtures shared by every test suite: real servers, isolated per test."""
