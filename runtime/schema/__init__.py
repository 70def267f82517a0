"""Data shapes shared by every layer: checkpoints, events, messages, ids and run settings.

They mirror Perstack's schemas (camelCase on the wire) and import nothing else of the runtime
except :mod:`runtime.errors`.
"""
