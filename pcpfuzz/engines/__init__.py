"""Engines that explore the model: each drives ``System.apply`` and reports a ``Campaign``."""
