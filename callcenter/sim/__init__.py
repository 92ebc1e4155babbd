"""A traffic simulator: agents' phones and callers speaking real SIP over loopback."""
