"""Trend models: robust regression over daily features, one module per gradual fault.

Every model works on the whole fleet at once: (vehicles, days) arrays in, one value per vehicle
(and wheel) out, vectorised with numpy; ``diagnostics.trend_engine`` turns the results into
findings.
"""
