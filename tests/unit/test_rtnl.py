"""The daemon's VIP requests (vrrp.rtnl): the messages, read back by pyroute2's own decoder,
and the kernel's answers. No namespace: the bytes only."""

from __future__ import annotations

import errno
import socket
import struct
from ipaddress import ip_interface

import pytest
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg

from vrrp.rtnl import (
    IFA_F_NODAD,
    NLM_F_ACK,
    NLM_F_CREATE,
    NLM_F_EXCL,
    NLM_F_REQUEST,
    RTM_DELADDR,
    RTM_NEWADDR,
    decode_ack,
    encode_address_request,
)


def _decoded(data: bytes) -> ifaddrmsg:
    msg = ifaddrmsg(data)
    msg.decode()
    return msg


def test_an_ipv4_add_is_iproute2s_message_as_pyroute2_reads_it() -> None:
    data = encode_address_request("add", 7, ip_interface("203.0.113.10/24"), seq=42)
    msg = _decoded(data)
    assert msg["header"]["length"] == len(data) and len(data) % 4 == 0
    assert msg["header"]["type"] == RTM_NEWADDR
    assert msg["header"]["flags"] == NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL
    assert msg["header"]["sequence_number"] == 42
    assert (msg["family"], msg["prefixlen"], msg["index"]) == (socket.AF_INET, 24, 7)
    assert (msg["flags"], msg["scope"]) == (0, 0)
    assert msg.get_attr("IFA_LOCAL") == "203.0.113.10"
    assert msg.get_attr("IFA_ADDRESS") == "203.0.113.10"
    assert msg.get_attr("IFA_BROADCAST") is None


def test_an_ipv6_delete_names_the_address_once_and_skips_duplicate_detection() -> None:
    data = encode_address_request("del", 3, ip_interface("2001:db8::10/64"), seq=7)
    msg = _decoded(data)
    assert msg["header"]["type"] == RTM_DELADDR
    assert msg["header"]["flags"] == NLM_F_REQUEST | NLM_F_ACK
    assert (msg["family"], msg["prefixlen"], msg["index"]) == (socket.AF_INET6, 64, 3)
    assert msg["flags"] == IFA_F_NODAD
    assert msg.get_attr("IFA_ADDRESS") == "2001:db8::10"
    assert msg.get_attr("IFA_LOCAL") is None


def test_an_unknown_command_is_refused() -> None:
    with pytest.raises(ValueError, match="add or del"):
        encode_address_request("replace", 1, ip_interface("192.0.2.1/32"), seq=1)  # type: ignore[arg-type]


def _ack(seq: int, error: int, *, copy: bytes = b"") -> bytes:
    """The kernel's NLMSG_ERROR answer: header, error, then the request's header (and, without
    NETLINK_CAP_ACK, its body)."""
    request_header = struct.pack("=IHHII", 16 + len(copy), RTM_NEWADDR, 0, seq, 0)
    body = struct.pack("=i", error) + request_header + copy
    return struct.pack("=IHHII", 16 + len(body), 2, 0, seq, 1234) + body


def test_the_answer_is_the_errno_of_the_request_it_acknowledges() -> None:
    assert decode_ack(_ack(5, 0), 5) == 0
    assert decode_ack(_ack(5, -errno.EEXIST), 5) == errno.EEXIST
    assert decode_ack(_ack(5, -errno.EADDRNOTAVAIL, copy=b"\0" * 24), 5) == errno.EADDRNOTAVAIL
    assert decode_ack(_ack(4, 0), 5) is None, "a late answer to an earlier request is not ours"


def test_an_answer_is_found_after_other_messages_and_never_read_past_the_datagram() -> None:
    other = struct.pack("=IHHII", 20, RTM_NEWADDR, 0, 0, 0) + b"\0" * 4
    assert decode_ack(other + _ack(9, -errno.ENODEV), 9) == errno.ENODEV
    whole = _ack(9, 0)
    assert decode_ack(whole[:-4], 9) is None, "a truncated answer is no answer"
    assert decode_ack(b"", 9) is None
