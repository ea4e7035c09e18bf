"""Backends turn the IR into something else: a torch module (`torchfx`) for now."""
