from app import create_app
from app.logs import configure_process

configure_process()  # gunicorn's workers and the Flask CLI log JSON lines (app/logs.py)
app = create_app()
