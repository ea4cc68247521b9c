"""JupyterHub: each user's server joins the user's own federation space; the members of a
team join the team's space instead (docs/FEDERATION.md, "JupyterHub"). Add these lines to
jupyterhub_config.py; tests/integration/test_federation_security.py runs them."""

import os
from pathlib import Path

from jupyter_interop.server.federation_access import space_password, space_url, subject_token

#: the NATS server every single-user server reaches, and the deployment's secret (readable by
#: the JupyterHub process only), from which each space's NATS password is derived
NATS_URL = os.environ.get("NATS_URL", "nats://nats.internal:4222")
SECRET = Path(os.environ.get("NATS_SECRET_FILE", "/etc/jupyterhub/nats-secret")).read_text().strip()
#: JupyterHub user -> shared space; everybody else gets a space of their own
TEAMS = {"carol": "desk-1", "dave": "desk-1"}


def federation_space(spawner):
    name = spawner.user.name
    return TEAMS.get(name) or subject_token(name)


def federation_url(spawner):
    space = federation_space(spawner)
    return space_url(NATS_URL, space, space_password(SECRET, space))


c = get_config()  # noqa: F821 (JupyterHub provides it)
c.Spawner.environment.update(
    {
        "JUPYTER_INTEROP_FEDERATION_SPACE": federation_space,
        "JUPYTER_INTEROP_FEDERATION_URL": federation_url,
    }
)
