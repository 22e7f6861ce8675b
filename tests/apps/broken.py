"""An app module that fails at import time."""

app = undefined_name_in_broken_module  # noqa: F821
