"""JupyterHub with NATS's decentralised authentication: each user's server joins the user's
own space, or the team's, as its own NATS user, with a .creds file the NATS admin made for
it (docs/FEDERATION.md, "Security model" and "JupyterHub"). Add these lines to
jupyterhub_config.py; tests/integration/test_federation_creds.py runs them."""

import os
from pathlib import Path

from jupyter_interop.server.federation_access import subject_token

#: the NATS server every single-user server reaches; its URL carries no secret
NATS_URL = os.environ.get("NATS_URL", "nats://nats.internal:4222")
#: <user>.creds for each JupyterHub user, made with `nsc generate creds` in the account of the
#: user's space, and readable by that user's server only (its owner, or a mounted secret)
CREDS_DIR = Path(os.environ.get("NATS_CREDS_DIR", "/etc/jupyterhub/nats-creds"))
#: JupyterHub user -> shared space; everybody else gets a space of their own
TEAMS = {"carol": "desk-1", "dave": "desk-1"}


def federation_space(spawner):
    name = spawner.user.name
    return TEAMS.get(name) or subject_token(name)


def federation_credentials(spawner):
    return str(CREDS_DIR / f"{subject_token(spawner.user.name)}.creds")


c = get_config()  # noqa: F821 (JupyterHub provides it)
c.Spawner.environment.update(
    {
        "JUPYTER_INTEROP_FEDERATION_URL": NATS_URL,
        "JUPYTER_INTEROP_FEDERATION_SPACE": federation_space,
        "JUPYTER_INTEROP_FEDERATION_CREDENTIALS": federation_credentials,
    }
)
