"""WSGI entry point for gunicorn: `gunicorn wsgi:app`."""

from formwork.app import create_app

app = create_app()
