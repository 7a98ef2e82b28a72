"""Serving an artifact behind existing engines: a Triton model repository written from the
manifest (serve/triton_repository.py), and a Ray Serve application (serve/ray_app.py).

Both batch requests into one runtime call through serve/tasks.py. Kept out of the runtime
package, with its own extra (`.[serve]`) and venv (`.venv-serve`), so the runtime stays thin.
"""
