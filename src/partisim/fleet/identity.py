"""Identity by address: the name a worker gives itself.

Identity: a worker's id comes from `--worker-id`/`WORKER_ID`; else from the entry of
config_workers.json whose ip is an address this worker is bound to (bound to 0.0.0.0:
any of this machine's interface addresses, loopback last); else it is
`worker-<ip-with-dashes>`. Addresses are read from the local system only (resolver,
interface table): finding them sends no packet anywhere.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

from partisim.fleet.config import Config, load_config

__all__ = ["Identity", "resolve_identity", "local_addresses", "bound_addresses", "fallback_id"]
_ANY = {"0.0.0.0", "", "::", "*"}


@dataclass(frozen=True)
class Identity:
    worker_id: str
    address: str  # the address that names this worker
    addresses: tuple[str, ...]  # every address it answers on, loopback last
    source: str  # "argumento", "config" or "dirección"
    config_path: str | None = None


def _is_loopback(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


def _order(addresses: list[str]) -> list[str]:
    """Unique, IPv4 before IPv6, loopback last; stable otherwise."""
    seen: dict[str, None] = {}
    for a in addresses:
        if a and a not in seen:
            seen[a] = None
    unique = list(seen)
    return sorted(unique, key=lambda a: (_is_loopback(a), ":" in a))


def _interface_addresses_linux() -> list[str]:
    """IPv4 address of every interface, by ioctl(SIOCGIFADDR): a local query only."""
    if not sys.platform.startswith("linux"):
        return []
    import fcntl

    found: list[str] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _, name in socket.if_nameindex():
            try:
                packed = fcntl.ioctl(s.fileno(), 0x8915, struct.pack("256s", name[:15].encode()))
            except OSError:
                continue  # interface without an IPv4 address
            found.append(socket.inet_ntoa(packed[20:24]))
    return found


def local_addresses() -> list[str]:
    """This machine's addresses (IPv4 first, loopback last)."""
    found: list[str] = []
    try:
        found += _interface_addresses_linux()
    except OSError:
        pass
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None, proto=socket.IPPROTO_TCP):
            found.append(str(info[4][0]).split("%")[0])
    except OSError:
        pass
    found.append("127.0.0.1")
    return _order(found)


def bound_addresses(host: str) -> list[str]:
    """The addresses a server bound to `host` answers on."""
    host = host.strip()
    if host in _ANY:
        return local_addresses()
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    try:  # a host name such as "localhost": resolved through the local resolver
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return [host]
    return _order([str(i[4][0]).split("%")[0] for i in infos])


def fallback_id(address: str) -> str:
    return "worker-" + address.replace(".", "-").replace(":", "-").strip("-")


def _load(config_path: str, explicit: bool) -> Config | None:
    if not explicit and not Path(config_path).exists():
        return None  # a worker may run without the fleet's file
    return load_config(config_path)


def _from_config(config: Config, addresses: list[str], port: int) -> tuple[str, str] | None:
    for address in addresses:
        entries = [w for w in config.workers if w.ip == address]
        if not entries:
            continue
        same_port = [w for w in entries if w.port == port]
        return (same_port or entries)[0].id, address
    return None


def resolve_identity(
    host: str,
    port: int,
    *,
    worker_id: str | None = None,
    config_path: str = "config_workers.json",
    config_explicit: bool = False,
) -> Identity:
    """Name this worker. Raises `partisim.errors.ConfigError` for an unreadable or invalid config file."""
    addresses = bound_addresses(host)
    primary = addresses[0] if addresses else "127.0.0.1"
    if worker_id:
        return Identity(worker_id, primary, tuple(addresses), "argumento")
    config = _load(config_path, config_explicit)
    if config is not None:
        match = _from_config(config, addresses, port)
        if match is not None:
            return Identity(match[0], match[1], tuple(addresses), "config", config_path)
    return Identity(
        fallback_id(primary), primary, tuple(addresses), "dirección", config_path if config is not None else None
    )
