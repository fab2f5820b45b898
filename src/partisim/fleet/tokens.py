"""The tokens that guard serve and the workers: how long one must be, and a good new one.

A short token can be guessed: a server refuses to start with one shorter than
`MIN_TOKEN_LENGTH` characters. `new_token` gives 43 characters of ``secrets`` randomness
(256 bits), what ``partisim token`` prints.
"""

from __future__ import annotations

import os
import secrets

from partisim.errors import ConfigError
from partisim.fleet.config import client_token

__all__ = ["MIN_TOKEN_LENGTH", "check_server_token", "new_token", "server_token"]

#: fewest characters a server's token may have
MIN_TOKEN_LENGTH = 16


def new_token() -> str:
    """A random token fit for ``--token-file`` or PARTISIM_TOKEN (URL-safe base 64, 256 bits)."""
    return secrets.token_urlsafe(32)


def check_server_token(token: str | None, source: str) -> None:
    """Refuse a token too short to resist guessing; ``source`` says where it came from."""
    if token is not None and len(token) < MIN_TOKEN_LENGTH:
        raise ConfigError(
            f"{source}: el token tiene {len(token)} caracteres y se exigen al menos {MIN_TOKEN_LENGTH}; "
            "genere uno con `partisim token` (por ejemplo: partisim token > token.txt y --token-file token.txt)"
        )


def server_token(token_file: str | None) -> str | None:
    """The token a server (``partisim serve``) demands, as `client_token` finds it, checked."""
    token = client_token(token_file)
    if token_file:
        source = f"--token-file {token_file}"
    elif os.environ.get("PARTISIM_TOKEN_FILE", "").strip():
        source = "PARTISIM_TOKEN_FILE"
    else:
        source = "PARTISIM_TOKEN"
    check_server_token(token, source)
    return token
