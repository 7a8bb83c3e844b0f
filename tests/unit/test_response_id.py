"""Every V2 response's generated id is a well-formed uuid4 (as KServe's and MLServer's are)."""

import uuid

from modelport.dataplane.plane import response_id


def test_response_ids_are_distinct_uuid4s():
    ids = [response_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 4 and parsed.variant == uuid.RFC_4122
