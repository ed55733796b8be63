"""One small router per resource; each is built around the ApiContext that create_app makes."""
