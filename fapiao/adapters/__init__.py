"""Adapters at the edge: database, broker, SMTP, issuer, QR, documents."""
