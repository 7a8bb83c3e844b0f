"""MLServer's adapter logic and code: the runtime adapter (adapter), ``MLModel`` (model),
its types, settings, codecs, errors, metrics, custom handlers and configuration vocabulary
(config_keys). ``modelport.mlserver.*`` re-exports these."""
