"""Shipped data of the mobile-pay service (the example settlement-type rules)."""
