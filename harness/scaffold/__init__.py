"""``portal-load init``: a starter load-test project, from the template in ``project/``."""
