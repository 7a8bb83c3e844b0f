"""KServe's adapter logic: its flags and constants, its REST documents, its repository, the
``to_rest`` key order, HTTPException answers and ``infer_type`` helpers. The import paths KServe users
write (``modelport.model_server``, ``.protocol``, ...) are one-screen re-exports of these."""
