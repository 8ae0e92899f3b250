"""Offers engine: rules, guards and the geofences that trigger location-based offers."""
