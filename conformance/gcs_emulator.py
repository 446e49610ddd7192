"""gcp-storage-emulator as the GCS storage tests run it.

One change to the pinned emulator: an XML API upload (``PUT
/bucket/object``, what object_store sends) is answered with the ETag that
real GCS sends
(https://cloud.google.com/storage/docs/xml-api/put-object-upload), without
which object_store reports the stored object as a failed upload. Takes the
emulator's own command line, e.g. ``start --host 127.0.0.1 --port 9023``.
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
from gcp_storage_emulator.__main__ import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
