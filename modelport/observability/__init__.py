"""Observability around the request path: request context and ids, statistics and health, structured
and access logs, tracing (extra ``tracing``) and payload logging. The composition root builds these
and hands them to the data plane and the transports; nothing here runs unless it is switched on,
except the request id and the statistics counters, which cost a few attribute writes per request."""
