"""Casework after the call (pure): complaints worked to their deadlines (decision 0008)."""
