"""Watching the product: metrics, alarm rules and baselines, exporters, reviews and
incident response. Pure cores; the server wiring is in app.py."""
