"""The car's OTA client: Uptane full verification of the director's and the image
repository's metadata with python-tuf, A/B installs, signed version reports."""
