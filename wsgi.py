"""Entry point for gunicorn (`gunicorn wsgi:app`) and `flask --app wsgi`."""

import gc

from api import create_app

app = create_app()

# What the app built at start-up (mappers, schemas, compiled statements, the OpenAPI spec) lives as long
# as the process. Moved out of the collector's generations, it is no longer scanned by every collection a
# request's short-lived ORM objects set off: a whole checkout took about a third less CPU (docs/adr/0008).
gc.collect()
gc.freeze()
