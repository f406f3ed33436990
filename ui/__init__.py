"""The web app's parts beside `app.py` (the Space's entry point): its start-up and its words."""
