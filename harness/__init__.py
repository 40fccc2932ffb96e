"""The ``portal-load`` command: runs campaigns end to end, records results, gates CI on latency
regressions, plans capacity and writes reports. Plain CPython: no gevent, no asyncio here; the
mock portal and Locust run as child processes.
"""
