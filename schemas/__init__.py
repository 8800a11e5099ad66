"""Wire types of the sync protocol: msgspec Structs, nothing else.

This package imports nothing from the project. Every Struct is ``kw_only`` and every field added
after protocol version 1 must carry a default, so old app versions keep decoding and being decoded.
Times on the wire are integer milliseconds since the Unix epoch (UTC), named ``*_ms``.
"""
