"""Tests: lab."""
