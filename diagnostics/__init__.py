"""Predictive maintenance and offers over telemetry (built by the diagnostics issues)."""
