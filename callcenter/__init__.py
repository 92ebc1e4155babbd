"""Customer-service hotline on a SIP PBX."""

__version__ = "0.1.0"
