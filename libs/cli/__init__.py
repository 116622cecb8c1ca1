"""The ``yibao`` command: one entry point, one sub-command per thing a person runs."""
