"""The commands of ``portal-load``: each module turns its flags into calls of the library
packages (run, gate, capacity, report, observe) and returns an exit code.

Only this layer reads an ``argparse.Namespace``; a command that is more than one step (``run
--gate``, ``gate-ab``, ``capacity``) composes the library's public functions, which return
values (a run returns its outcome: folder, status, exit code).
"""
