"""HTTP handlers: decode → store read → core decides → store write → return a Struct."""
