"""The service network (issue 7): centres and mobile vans, slot search, bookings and their
lifecycle, work orders with recall and warranty checks, and booking suggestions from alerts.

See docs/service-network.md. Tables: ``api/migrations/005_service_network.sql``.
"""
