"""Customers: profiles, consent, vehicle ownership, GDPR export and erasure, the overview."""
