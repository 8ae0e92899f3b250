"""Personalised offers: decisions under consent and caps, codes, redemption and KPIs."""
