"""Signed over-the-air updates and feature entitlements (built by the OTA issue)."""
