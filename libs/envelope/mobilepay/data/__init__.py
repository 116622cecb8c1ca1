"""The mobile-pay catalog's data files (read by :func:`yibao.envelope.mobilepay.catalog.load_catalog`)."""
