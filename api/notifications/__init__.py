"""Customer notifications (issue 7): the outbox-driven notifier, the delivery loop with its
channel adapters (app, e-mail, in-car, SMS), the inbox queries and the SSE fan-out.

Entry points for the composition root: :func:`api.notifications.notifier.notifier` (an
``OutboxConsumer`` named ``notifier``) and :class:`api.notifications.delivery.DeliveryLoop`.
Nothing here is built at import time.
"""
