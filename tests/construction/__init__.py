"""Tests of the construction module packs (module_packs/): each installed with its demo data."""
