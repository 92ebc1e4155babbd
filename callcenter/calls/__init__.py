"""Calls: the signalling-only B2BUA between callers and agents' phones."""
