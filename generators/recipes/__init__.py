"""Synthetic-data recipes (each a Stage): nemotron_cc, mind, beyondweb; entry-point group ``dataengine.recipes``."""
