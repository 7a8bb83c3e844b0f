"""MLServer's configuration vocabulary, as data: its environment variables, its settings.json keys and
its model-settings.json fields, each mapped to a modelport setting or marked as accepted but unused.

Pure tables (no imports from the rest of modelport), read by :mod:`modelport.settings`.
"""

from __future__ import annotations

# MLSERVER_<NAME> -> ServerSettings field. These rank below MODELPORT_* variables.
ENV_TO_SERVER: dict[str, str] = {
    "MLSERVER_HOST": "host",
    "MLSERVER_HTTP_PORT": "http_port",
    "MLSERVER_GRPC_PORT": "grpc_port",
    "MLSERVER_MODELS_DIR": "model_repository",
    "MLSERVER_MODEL_REPOSITORY_ROOT": "model_repository",
    "MLSERVER_LOAD_MODELS_AT_STARTUP": "load_models_at_startup",
    "MLSERVER_GRPC_MAX_MESSAGE_LENGTH": "grpc_max_message_size",
    "MLSERVER_DEBUG": "debug",
    "MLSERVER_PARALLEL_WORKERS": "parallel_workers",
    "MLSERVER_METRICS_PORT": "metrics_port",
    "MLSERVER_SERVER_NAME": "server_name",
    "MLSERVER_USE_STRUCTURED_LOGGING": "use_structured_logging",
    # MLServer reads every model-settings field from MLSERVER_MODEL_* as a default for all models;
    # these are the ones with a modelport meaning.
    "MLSERVER_MODEL_NAME": "default_model_name",
    "MLSERVER_MODEL_IMPLEMENTATION": "default_model_implementation",
    "MLSERVER_MODEL_URI": "default_model_uri",
    "MLSERVER_MODEL_VERSION": "default_model_version",
    "MLSERVER_MODEL_PARALLEL_WORKERS": "parallel_workers",  # wins over MLSERVER_PARALLEL_WORKERS
    "MLSERVER_MODEL_MAX_BATCH_SIZE": "max_batch_size",
    "MLSERVER_MODEL_MAX_BATCH_TIME": "max_batch_time",
}

# settings.json keys MLServer writes that name a modelport setting differently.
SERVER_KEY_ALIASES: dict[str, str] = {
    "model_repository_root": "model_repository",
    "grpc_max_message_length": "grpc_max_message_size",
}

# settings.json keys of MLServer with no modelport equivalent: accepted with a warning that says so.
SERVER_KEYS_IGNORED: dict[str, str] = {
    "parallel_workers_timeout": "worker processes are stopped by the grace period",
    "environments_dir": "custom environment tarballs are not supported",
    "model_repository_implementation": "only the folder repository is supported",
    "model_repository_implementation_args": "only the folder repository is supported",
    "server_version": "the version is modelport's",
    "extensions": "the extensions list is modelport's",
    "root_path": "serve behind a proxy that strips the prefix",
    "cors_settings": "CORS is not configured here",
    "metrics_endpoint": "metrics are served at /metrics",
    "metrics_rest_server_prefix": "metric names are modelport's",
    "metrics_dir": "metrics are kept per process",
    "logging_settings": "use log_level and log_format",
    "kafka_enabled": "Kafka is not supported",
    "kafka_servers": "Kafka is not supported",
    "kafka_topic_input": "Kafka is not supported",
    "kafka_topic_output": "Kafka is not supported",
    "tracing_server": "tracing is not configured here",
    "cache_enabled": "no response cache here",
    "cache_size": "no response cache here",
    "gzip_enabled": "responses are not gzipped",
}

# model-settings.json fields MLServer knows that modelport accepts without acting on them.
MODEL_KEYS_IGNORED: dict[str, str] = {
    "warm_workers": "worker processes load the model when they start",
    "cache_enabled": "no response cache here",
}
PARAM_KEYS_IGNORED: dict[str, str] = {
    "inference_pool_gid": "each model with parallel_workers has its own pool",
    "autogenerate_inference_pool_gid": "each model with parallel_workers has its own pool",
}
