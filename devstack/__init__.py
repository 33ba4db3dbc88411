"""Starts and stops the real servers and processes that development, demos and tests need."""
