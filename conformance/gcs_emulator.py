"""gcp-storage-emulator as the GCS storage tests run it.

Two changes to the pinned emulator, both to its XML API paths
(``/bucket/object``), which object_store uses:

- an upload (``PUT``) is answered with the ETag that real GCS sends
  (https://cloud.google.com/storage/docs/xml-api/put-object-upload), without
  which object_store reports the stored object as a failed upload;
- ``DELETE`` is served there as real GCS does
  (https://cloud.google.com/storage/docs/xml-api/delete-object), not only
  through the JSON API.

Takes the emulator's own command line, e.g. ``start --host 127.0.0.1 --port
9023``.
"""

import hashlib
import sys

from gcp_storage_emulator.handlers import objects

_xml_upload = objects.xml_upload


def _xml_upload_with_etag(request, response, storage, *args, **kwargs):
    _xml_upload(request, response, storage, *args, **kwargs)
    if response.status == 200:
        response["ETag"] = '"%s"' % hashlib.md5(request.data).hexdigest()


objects.xml_upload = _xml_upload_with_etag

# Imported only now: the server's route table takes the handler as it is
# when the module loads.
from gcp_storage_emulator import server  # noqa: E402
from gcp_storage_emulator.__main__ import main  # noqa: E402

_xml_object_route = server.HANDLERS[-1][1]
assert server.GET in _xml_object_route and server.PUT in _xml_object_route
_xml_object_route[server.DELETE] = objects.delete

if __name__ == "__main__":
    sys.exit(main())
