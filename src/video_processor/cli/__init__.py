"""The ``planopticon`` command line."""
