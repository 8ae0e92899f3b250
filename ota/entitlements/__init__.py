"""Signed feature entitlements (issue 9): the document versions of each vehicle, their signing
with the online entitlement key, and the service that pushes the newest one to the car.

- :mod:`ota.entitlements.store`: grants, revocations and listings (the ``entitlements`` table of
  api migration 003) and the per-vehicle document versions (ota migration 003).
- :mod:`ota.entitlements.signing`: the pure core that builds and signs a document.
- :mod:`ota.entitlements.keys`: the entitlement key in the OTA online key directory.
- :mod:`ota.entitlements.push`: :class:`EntitlementPusher`, ``run(stop)``.

The document format is :mod:`protocol.entitlements`; docs/ota.md explains the design.
"""
