"""Outbox topics of the offers engine (ADR 0007).

``offer.triggered``: a rule's condition held for a car (the stream engine or a sweep appends
it); the ``offers`` consumer decides on it exactly once. ``offer.created``: an offer was sent;
the notifier tells the owner.
"""

OFFER_TRIGGERED = "offer.triggered"
OFFER_CREATED = "offer.created"
