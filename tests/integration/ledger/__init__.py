"""Tests of ``worker/adapters/ledger/``, one module per module."""
