"""Building XLA AOT artifacts (build.py) and linking them into C/C++ programs (__main__.py)."""
