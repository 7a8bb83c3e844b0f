#!/bin/sh
# Regenerate the committed Python stubs from grpc_predict_v2.proto and model_repository.proto (needs grpcio-tools; the
# runtime does not). Run from anywhere:  [PYTHON=.venv/bin/python] sh modelport/wire/grpc/generate.sh
set -eu
here=$(cd "$(dirname "$0")" && pwd)
python=${PYTHON:-python}
case $python in */*) python=$(cd "$(dirname "$python")" && pwd)/$(basename "$python") ;; esac
cd "$here"
"$python" -m grpc_tools.protoc -I. --python_out=. --pyi_out=. --grpc_python_out=. grpc_predict_v2.proto model_repository.proto
"$python" - <<'PY'
import re
from pathlib import Path

for name in ("grpc_predict_v2", "model_repository"):
  pb2 = Path(f"{name}_pb2.py")
  text = pb2.read_text()
  # The stubs load on every protobuf runtime the package allows (tritonclient pins protobuf<7, this
  # gencode is newer): drop protoc's exact-version check.
  text = re.sub(r"_runtime_version\.ValidateProtobufRuntimeVersion\(.*?\n\)\n", "", text, flags=re.S)
  text = text.replace("from google.protobuf import runtime_version as _runtime_version\n", "")
  # A private descriptor pool: tritonclient, KServe and MLServer register the same "inference.*"
  # names in the default pool, and both may live in one process (a transformer, our interop tests).
  text = text.replace(
      "_sym_db = _symbol_database.Default()\n",
      "_sym_db = _symbol_database.Default()\n_POOL = _descriptor_pool.DescriptorPool()\n",
  )
  text = text.replace("_descriptor_pool.Default().AddSerializedFile(", "_POOL.AddSerializedFile(")
  # Messages name their real module, so pickle and repr find them.
  text = text.replace(f"(DESCRIPTOR, '{name}_pb2', _globals)", "(DESCRIPTOR, __name__, _globals)")
  assert "_POOL.AddSerializedFile(" in text and "__name__, _globals" in text and "ValidateProtobufRuntimeVersion" not in text
  pb2.write_text(text)

  stubs = Path(f"{name}_pb2_grpc.py")
  text = stubs.read_text()
  # Import the messages from this package, not from a top-level module.
  text = text.replace(f"import {name}_pb2 as", f"from . import {name}_pb2 as")
  assert f"from . import {name}_pb2 as" in text
  stubs.write_text(text)
PY
echo "regenerated $(ls "$here"/*_pb2*.py* | xargs -n1 basename | tr '\n' ' ')"
