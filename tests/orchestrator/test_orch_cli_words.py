"""What the command line says when a word is wrong (issue 24 §4): a guess never names a
command that opens a port."""

from __future__ import annotations

import subprocess
import sys

import pytest


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "partisim", *args], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.parametrize("word", ["workers", "wroker", "workr"])
def test_a_word_close_to_worker_suggests_the_listing_command(word):
    done = _cli(word)
    assert done.returncode == 2
    assert "«ping»" in done.stderr and "«worker»" not in done.stderr, done.stderr


def test_a_word_close_to_a_listing_command_is_still_suggested():
    done = _cli("staus")
    assert done.returncode == 2 and "¿quiso decir «status»?" in done.stderr
