"""Prometheus metrics: recorders fed by events, collectors read at scrape time."""
