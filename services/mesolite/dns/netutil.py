"""This host's interface addresses, which the standard library does not list: the nameserver's own A/AAAA record
(``listener: 0.0.0.0`` → every non-loopback address, as upstream) and the "not myself" filter for resolv.conf."""

from __future__ import annotations

import fcntl
import ipaddress
import socket
import struct

_SIOCGIFADDR = 0x8915


def local_addresses(include_loopback: bool = False) -> list[str]:
    addresses: list[str] = []
    for _, name in socket.if_nameindex():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            try:
                packed = fcntl.ioctl(sock.fileno(), _SIOCGIFADDR, struct.pack("256s", name.encode()[:15]))
            except OSError:
                continue
        addresses.append(socket.inet_ntoa(packed[20:24]))
    try:
        with open("/proc/net/if_inet6") as handle:
            for line in handle:
                raw = line.split()[0]
                addresses.append(str(ipaddress.IPv6Address(bytes.fromhex(raw))))
    except OSError:
        pass
    if include_loopback:
        return addresses
    return [a for a in addresses if not ipaddress.ip_address(a).is_loopback]
