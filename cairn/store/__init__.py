"""Stores: metadata tables and content-addressed bytes. Imports only from ``cairn.core``."""
