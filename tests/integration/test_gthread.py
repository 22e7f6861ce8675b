#!/usr/bin/python3
"""The gthread worker (-k gthread, --threads N): placeholder, filled below."""
import unittest

if __name__ == "__main__":
        unittest.main()
