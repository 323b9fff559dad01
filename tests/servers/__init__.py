"""Fake venue / service HTTP servers on 127.0.0.1 for scenario tests."""
