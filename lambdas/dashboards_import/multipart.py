"""multipart/form-data for the saved-objects import API (it takes the NDJSON as a file upload)."""

from __future__ import annotations

import hashlib


def ndjson_upload(content: bytes, *, filename: str = "saved_objects.ndjson") -> tuple[str, bytes]:
    """``(content_type, body)`` with a single ``file`` part.

    The boundary is derived from the content, so the same objects always give the same request
    (reproducible, and tests can assert the exact bytes); a content hash cannot occur in the content.
    """
    boundary = f"osd-import-{hashlib.sha256(content).hexdigest()[:32]}"
    body = b"".join(
        [
            f"--{boundary}\r\n".encode(),
            f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'.encode(),
            b"Content-Type: application/ndjson\r\n\r\n",
            content,
            f"\r\n--{boundary}--\r\n".encode(),
        ]
    )
    return f"multipart/form-data; boundary={boundary}", body
