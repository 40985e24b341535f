"""The gateway's root exception; every error it raises on purpose is one."""


class GatewayError(Exception):
    """Something on the server side is wrong: a deployment, a configuration, a store."""


class ProvisionError(GatewayError, ValueError):
    """A deployment cannot be written as asked; the message says why and nothing was changed."""


class StoreError(GatewayError, RuntimeError):
    """The store cannot be opened or used: not a database, a newer schema, a failed write."""
