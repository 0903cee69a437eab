"""Which URLs a webhook may be sent to: never the service's own neighbourhood unless an operator allows it.

A subscription could otherwise make the service call loopback, the private network, link-local
addresses or a cloud's metadata endpoint on an admin's behalf (server-side request forgery).
Every address a host name resolves to must be global; hosts in REITTI_WEBHOOK_ALLOW_HOSTS are
taken as they are. The check runs when a subscription is made and again before each delivery,
since a name may resolve elsewhere later.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Collection
from urllib.parse import urlsplit


class UnsafeUrl(ValueError):
    """A URL a webhook may not be sent to; the message says why without repeating it."""


def host_of(url: str) -> str:
    """The URL's host, lower case; UnsafeUrl when it has none or is not http(s)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError:
        raise UnsafeUrl("is not a valid URL") from None
    if parts.scheme not in ("https", "http") or not host:
        raise UnsafeUrl("must be an https:// URL with a host")
    if parts.username or parts.password:
        raise UnsafeUrl("must not carry a user name or password")
    return host.lower()


def check_url(url: str, allow_hosts: Collection[str]) -> None:
    """Refuse (UnsafeUrl) a URL that is not https, or whose host resolves to a non-global address.

    An allowed host may also be plain http: it is the operator's own receiver.
    """
    host = host_of(url)
    if host in allow_hosts:
        return
    if urlsplit(url).scheme != "https":
        raise UnsafeUrl("must be an https:// URL (plain http only to a host the operator allows)")
    try:
        addresses = {str(info[4][0]) for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)}
    except (socket.gaierror, UnicodeError):
        raise UnsafeUrl("names a host that does not resolve") from None
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        mapped = getattr(ip, "ipv4_mapped", None)
        if not (mapped or ip).is_global:
            raise UnsafeUrl(
                "points at a loopback, private, link-local or metadata address; an operator may allow "
                "the host in REITTI_WEBHOOK_ALLOW_HOSTS"
            )
