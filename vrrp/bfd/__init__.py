"""Bidirectional Forwarding Detection (RFC 5880 asynchronous mode, RFC 5881 single hop).

The pure layer: :mod:`vrrp.bfd.packet` is the control packet codec, :mod:`vrrp.bfd.session`
the session state machine and timer negotiation, and :mod:`vrrp.bfd.demux` the session table
(demultiplexing, discriminators). None opens a socket or reads a clock; a driver owns both.

The bundled daemon's driver: :mod:`vrrp.bfd.netio` (the UDP sockets of RFC 5881) and
:mod:`vrrp.bfd.endpoint` (every ``bfd_instance`` as a session on those sockets, its log lines,
its status and the events VRRP tracking reads).

The package imports nothing on purpose, so importing one module never pulls in the others.
"""
