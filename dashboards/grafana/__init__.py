"""Grafana dashboards as code (grafana-foundation-sdk).

The dashboards are Python (``boards/``) so every query is reviewable and testable;
``build`` renders them to committed JSON under ``json/`` that Grafana provisioning
loads as is, and ``push`` uploads the same JSON to a live Grafana over its HTTP API.
"""
