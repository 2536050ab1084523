"""Small shared helpers: logging set-up, atomic writes."""
