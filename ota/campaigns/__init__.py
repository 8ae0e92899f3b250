"""Campaigns: which vehicles get an image, in which waves, when, and with whose consent."""
