"""Bidirectional Forwarding Detection (RFC 5880 asynchronous mode, RFC 5881 single hop).

Pure code only: :mod:`vrrp.bfd.packet` is the control packet codec, :mod:`vrrp.bfd.session`
the session state machine and timer negotiation, and :mod:`vrrp.bfd.demux` the session table
(demultiplexing, discriminators). None opens a socket or reads a clock; a driver owns both.

The package imports nothing on purpose, so importing one module never pulls in the others.
"""
