"""Adapters for code and clients written for other servers (KServe, MLServer): they only translate.

KServe's module paths (``modelport.model_server``, ``.utils.utils``, ``.logging``,
``.protocol.infer_type``, ``.constants``) are one-screen re-export modules pointing here or at the core.
"""
