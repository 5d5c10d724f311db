"""Config reload (SIGHUP or POST /routing): a bad file is refused and the running config stays.

A reload that takes also lifts every upstream Retry-After block: the operator changed something (a key, a URL, a
quota), so what an upstream said about the old config no longer holds. Open circuits keep their state.
"""

from __future__ import annotations

import logging

from gateway.lifespan import Services, load_gateway_config, report_config
from routing.config.schema import ConfigError

log = logging.getLogger("gateway")


def reload_config(services: Services) -> str:
    """Re-read both config files; returns "" on success or the error that kept the old config."""
    try:
        config = load_gateway_config(services.settings)
    except ConfigError as exc:
        log.error("config reload refused, keeping the running config: %s", exc)
        return str(exc)
    services.manager.replace_config(config)
    services.board.replace(config.routing)
    services.deployments.restart_soon()
    lifted = services.executor.guards.lift_blocks()
    if lifted:
        log.info("config reload lifted the Retry-After block of %d deployment(s)", lifted)
    report_config(config)
    log.info("config reloaded (routing version %d)", services.manager.version)
    return ""
