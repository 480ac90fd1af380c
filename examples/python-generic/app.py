"""A Sluice format plugin in Python: GitLab-style generic packages.

`PUT /{name}/{version}/{file}` with a token uploads the body as one file of that version,
`GET` of the same path downloads it, `GET /{name}` lists the versions and their files as JSON.
Several files make one version; each is a separate stored file whose qualifier is its file name.

Built with componentize-py against the contract in `wit/v0.1.0` (see README.md).
"""

import json
import re
from urllib.parse import unquote

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import registry, types

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
VERSION = re.compile(r"^[0-9][A-Za-z0-9._+-]*$")
FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._~+-]*$")

STATUS = {
    types.ErrorKind.INVALID: 400,
    types.ErrorKind.NOT_FOUND: 404,
    types.ErrorKind.GONE: 410,
    types.ErrorKind.UNAUTHORIZED: 401,
    types.ErrorKind.FORBIDDEN: 403,
    types.ErrorKind.CONFLICT: 409,
    types.ErrorKind.TOO_LARGE: 413,
    types.ErrorKind.UNSUPPORTED: 405,
    types.ErrorKind.INTERNAL: 500,
}


def fail(kind, message):
    return Err(types.Error(kind, message))


def stored_name(name, version, file):
    # The host keeps one flat file name per stored file; `@` is in no name or version.
    return f"{name}@{version}@{file}"


def split_stored(file_name):
    parts = file_name.split("@", 2)
    if len(parts) != 3:
        return None
    name, version, file = parts
    if NAME.match(name) and VERSION.match(version) and FILE.match(file):
        return name, version, file
    return None


def json_response(status, value):
    return types.Response(status, [("content-type", "application/json")], json.dumps(value).encode())


def check_path(name, version, file):
    if not NAME.match(name) or not VERSION.match(version) or not FILE.match(file):
        raise fail(types.ErrorKind.INVALID, "use /NAME/VERSION/FILE with letters, digits, `.`, `_` and `-`")


class Format(exports.Format):
    def info(self):
        return types.FormatInfo(
            name="generic",
            display_name="Generic packages",
            case_insensitive_names=False,
            credential_headers=["private-token", "job-token"],
            publish=types.PublishMode.UPLOAD,
            install_hint="curl -fO {url}/{name}/{version}/FILE",
        )

    def parse(self, file_name, file):
        parsed = split_stored(file_name)
        if parsed is None:
            raise fail(types.ErrorKind.INVALID, f"`{file_name}` is not NAME@VERSION@FILE")
        if file.size() == 0:
            raise fail(types.ErrorKind.INVALID, "the file is empty")
        name, version, qualifier = parsed
        return types.Metadata(name, version, qualifier, None, None, None, None, None, [], [], [], "")

    def extraction_for(self, meta):
        return types.Extraction("application/octet-stream", [types.ExtractionStep("cp", ["{archive}", "{dest}/"])], None)

    def trigger_for(self, meta):
        variables = [("GENERIC_PACKAGE", meta.name), ("GENERIC_VERSION", meta.version), ("GENERIC_FILE", meta.qualifier)]
        return types.Trigger("package_push", variables, [])

    def handle(self, req, body):
        segments = [unquote(s) for s in req.path.split("/") if s]
        read = req.method in ("GET", "HEAD")
        if req.method == "PUT" and len(segments) == 3:
            name, version, file = segments
            check_path(name, version, file)
            if body.size() == 0:
                raise fail(types.ErrorKind.INVALID, "the request has no file")
            upload = types.Upload(stored_name(name, version, file), types.UploadSource_Body(), name, [])
            created = json_response(201, {"message": "201 Created"})
            return types.Outcome([types.Effect_Publish(upload)], types.Reply_Respond(created))
        if read and len(segments) == 3:
            name, version, file = segments
            check_path(name, version, file)
            package = registry.package(name)
            artifact = None
            if package is not None:
                artifact = next((a for a in package.artifacts if a.version == version and a.qualifier == file), None)
            if artifact is None:
                raise fail(types.ErrorKind.NOT_FOUND, f"404 {name}/{version}/{file} Not Found")
            return types.Outcome([], types.Reply_ServeFile(types.FileRef(package.name, artifact.file_name, "application/octet-stream")))
        if read and len(segments) == 1:
            package = registry.package(segments[0])
            if package is None:
                raise fail(types.ErrorKind.NOT_FOUND, f"404 Package {segments[0]} Not Found")
            versions = {}
            for a in package.artifacts:
                versions.setdefault(a.version, []).append({"file_name": a.qualifier, "size": a.size, "sha256": a.sha256})
            listing = {"name": package.name, "versions": [{"version": v, "files": f} for v, f in versions.items()]}
            return types.Outcome([], types.Reply_Respond(json_response(200, listing)))
        raise fail(types.ErrorKind.NOT_FOUND, f"404 {req.method} {req.path} Not Found")

    def render_error(self, err):
        # GitLab's API answers errors as `{"message": ...}`.
        message = "500 Internal Server Error" if err.kind == types.ErrorKind.INTERNAL else err.message
        return json_response(STATUS[err.kind], {"message": message})

    def from_tag(self, tag, tree):
        raise fail(types.ErrorKind.UNSUPPORTED, "generic packages are uploaded, not made from git tags")
