"""The COCO downloader against a real HTTP server on 127.0.0.1 serving archives the test builds:
resume with Range, verification, and nothing half-written on a mismatch."""
import hashlib
import http.server
import io
import json
import threading
import zipfile

import pytest

from openpose_plus.host_training.data.download import (COCO2017, LEDGER, Artifact, ChecksumError, DownloadError,
                                                  download_all, extract, fetch, load_manifest)


class Server(object):
    """Serves ``files`` (path -> bytes) with Range support; can drop a connection part-way or
    ignore Range, and records every request's path and Range header."""

    def __init__(self):
        self.files = {}
        self.requests = []
        self.drop_after = {}      # path -> bytes to send before closing, for the first request only
        self.ignore_range = False
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                rng = self.headers.get("Range")
                outer.requests.append((self.path, rng))
                data = outer.files.get(self.path)
                if data is None:
                    self.send_error(404, "Not Found")
                    return
                start = 0
                if rng and not outer.ignore_range:
                    start = int(rng.split("=")[1].split("-")[0])
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", "bytes */%d" % len(data))
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", "bytes %d-%d/%d" % (start, len(data) - 1, len(data)))
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                cut = outer.drop_after.pop(self.path, None)
                if cut is not None:
                    self.wfile.write(body[:cut])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def base(self):
        return "http://127.0.0.1:%d" % self.httpd.server_address[1]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


def make_zip(members):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def annotations_zip():
    # Incompressible-ish content, a few hundred kB, so a download takes several chunks.
    blob = hashlib.sha256(b"seed").digest() * 12000
    return make_zip({"annotations/person_keypoints_val2017.json": json.dumps({"images": []}).encode(),
                     "annotations/blob.bin": blob})


def artifact_for(server, path, data, **kw):
    server.files[path] = data
    fields = dict(name=path.strip("/").split(".")[0], url=server.base + path, size=len(data),
                  md5=hashlib.md5(data).hexdigest())
    fields.update(kw)
    return Artifact(**fields)


def leftovers(dest):
    return sorted(p.name for p in dest.iterdir() if p.name != LEDGER)


def test_fresh_download_is_verified_extracted_and_recorded(server, tmp_path):
    data = annotations_zip()
    art = artifact_for(server, "/annotations_trainval2017.zip", data)
    out = io.StringIO()
    path = fetch(art, tmp_path, stream=out)
    assert path.read_bytes() == data
    assert not (tmp_path / "annotations_trainval2017.zip.part").exists()
    ledger = json.loads((tmp_path / LEDGER).read_text())
    assert ledger["annotations_trainval2017.zip"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert "100%" in out.getvalue()  # a progress line
    extract(path, tmp_path, show_progress=False)
    assert json.loads((tmp_path / "annotations" / "person_keypoints_val2017.json").read_text()) == {"images": []}
    # Run again: verified from the ledger, nothing fetched.
    n = len(server.requests)
    assert fetch(art, tmp_path, show_progress=False) == path
    assert len(server.requests) == n


def test_resumes_a_partial_file_with_a_range_request(server, tmp_path):
    data = annotations_zip()
    art = artifact_for(server, "/val2017.zip", data)
    (tmp_path / "val2017.zip.part").write_bytes(data[:100000])
    path = fetch(art, tmp_path, show_progress=False)
    assert path.read_bytes() == data
    assert server.requests == [("/val2017.zip", "bytes=100000-")]


def test_resumes_after_the_connection_drops(server, tmp_path):
    data = annotations_zip()
    art = artifact_for(server, "/val2017.zip", data)
    server.drop_after["/val2017.zip"] = 150000
    path = fetch(art, tmp_path, show_progress=False)
    assert path.read_bytes() == data
    assert server.requests[0] == ("/val2017.zip", None)
    assert server.requests[1][1] is not None and server.requests[1][1].startswith("bytes=")
    assert int(server.requests[1][1][6:-1]) > 0


def test_a_server_that_ignores_range_restarts_cleanly(server, tmp_path):
    data = annotations_zip()
    art = artifact_for(server, "/val2017.zip", data)
    (tmp_path / "val2017.zip.part").write_bytes(data[:5000])
    server.ignore_range = True
    assert fetch(art, tmp_path, show_progress=False).read_bytes() == data


def test_checksum_mismatch_is_an_error_that_keeps_nothing(server, tmp_path):
    data = annotations_zip()
    corrupted = data[:1000] + bytes([data[1000] ^ 0xFF]) + data[1001:]
    art = artifact_for(server, "/val2017.zip", corrupted, md5=hashlib.md5(data).hexdigest())
    with pytest.raises(ChecksumError, match=r"val2017.zip.*md5 .*expected .*deleted"):
        fetch(art, tmp_path, show_progress=False)
    assert leftovers(tmp_path) == []


def test_a_mismatched_resume_is_an_error_that_keeps_nothing(server, tmp_path):
    data = annotations_zip()
    art = artifact_for(server, "/val2017.zip", data)
    (tmp_path / "val2017.zip.part").write_bytes(b"\0" * 20000)  # a .part that is not this file's start
    with pytest.raises(ChecksumError):
        fetch(art, tmp_path, show_progress=False)
    assert leftovers(tmp_path) == []
    assert fetch(art, tmp_path, show_progress=False).read_bytes() == data  # and a rerun succeeds


def test_size_mismatch_is_an_error_that_keeps_nothing(server, tmp_path):
    data = annotations_zip()
    art = artifact_for(server, "/val2017.zip", data + b"trailing garbage", md5=None, size=len(data))
    with pytest.raises(ChecksumError, match="size"):
        fetch(art, tmp_path, show_progress=False)
    assert leftovers(tmp_path) == []


def test_an_existing_wrong_file_is_refused_and_removed(server, tmp_path):
    data = annotations_zip()
    art = artifact_for(server, "/val2017.zip", data)
    (tmp_path / "val2017.zip").write_bytes(data[:-10])  # truncated by some other tool
    with pytest.raises(ChecksumError, match="size"):
        fetch(art, tmp_path, show_progress=False)
    assert leftovers(tmp_path) == []


def test_sha256_recorded_on_first_download_is_checked_later(server, tmp_path):
    data = annotations_zip()
    art = artifact_for(server, "/train2017.zip", data, md5=None)  # only a size is known
    fetch(art, tmp_path, show_progress=False)
    (tmp_path / "train2017.zip").unlink()
    server.files["/train2017.zip"] = data[:-1] + b"X"  # same size, different content
    with pytest.raises(ChecksumError, match="recorded at its first verified download"):
        fetch(art, tmp_path, show_progress=False)
    assert leftovers(tmp_path) == []


def test_http_errors_and_unreachable_servers_are_named(server, tmp_path):
    missing = Artifact("x", server.base + "/missing.zip", size=10)
    with pytest.raises(DownloadError, match="missing.zip: HTTP 404"):
        fetch(missing, tmp_path, show_progress=False)
    dead = Artifact("y", "http://127.0.0.1:9/none.zip", size=10)  # port 9 (discard): refused
    with pytest.raises(DownloadError, match="none.zip: cannot connect"):
        fetch(dead, tmp_path, show_progress=False, retries=1)
    assert leftovers(tmp_path) == []


def test_extraction_refuses_paths_outside_the_destination(tmp_path):
    bad = tmp_path / "evil.zip"
    bad.write_bytes(make_zip({"../escaped.txt": b"x"}))
    with pytest.raises(DownloadError, match="outside the destination"):
        extract(bad, tmp_path / "out", show_progress=False)
    assert not (tmp_path / "escaped.txt").exists()
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"PK\3\4 not really")
    with pytest.raises(DownloadError, match="not a valid zip"):
        extract(broken, tmp_path / "out", show_progress=False)


def test_cli_with_a_manifest(server, tmp_path, capsys):
    from openpose_plus.commands import main

    ann = annotations_zip()
    val = make_zip({"val2017/000000000001.jpg": b"\xff\xd8jpeg"})
    arts = [artifact_for(server, "/annotations_trainval2017.zip", ann, name="annotations"),
            artifact_for(server, "/val2017.zip", val, name="val2017")]
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps([a.__dict__ for a in arts]))
    dest = tmp_path / "coco17"
    assert main(["download-coco", str(dest), "--manifest", str(manifest), "--quiet"]) == 0
    assert (dest / "annotations" / "person_keypoints_val2017.json").exists()
    assert (dest / "val2017" / "000000000001.jpg").read_bytes() == b"\xff\xd8jpeg"
    assert not list(dest.glob(".*.extracting"))

    bad = [dict(arts[1].__dict__, md5="0" * 32)]
    manifest.write_text(json.dumps(bad))
    other = tmp_path / "other"
    assert main(["download-coco", str(other), "--manifest", str(manifest), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "val2017.zip" in err and "does not match" in err
    assert leftovers(other) == []
    assert main(["download-coco", str(other), "--manifest", str(manifest), "--sets", "nope", "--quiet"]) == 1
    assert "unknown set(s) nope" in capsys.readouterr().err


def test_download_all_removes_archives_when_asked(server, tmp_path):
    ann = annotations_zip()
    art = artifact_for(server, "/annotations_trainval2017.zip", ann, name="annotations")
    download_all([art], tmp_path, remove_archives=True, show_progress=False, log=lambda s: None)
    assert not (tmp_path / "annotations_trainval2017.zip").exists()
    assert (tmp_path / "annotations" / "blob.bin").exists()
    n = len(server.requests)
    download_all([art], tmp_path, remove_archives=True, show_progress=False, log=lambda s: None)
    assert len(server.requests) == n  # already extracted: not fetched again


def test_manifest_validation(tmp_path):
    m = tmp_path / "m.json"
    for text, message in (('[{"name": "a", "url": "http://x/a.zip"}]', "no size or checksum"),
                          ('[{"name": "a", "url": "http://x/a.zip", "size": 3, "colour": "red"}]', "unknown field"),
                          ("{", "not valid JSON")):
        m.write_text(text)
        with pytest.raises(DownloadError, match=message):
            load_manifest(m)


def test_the_builtin_manifest_is_coco_2017():
    by_name = {a.name: a for a in COCO2017}
    assert set(by_name) == {"annotations", "val2017", "train2017"}
    assert by_name["val2017"].url == "http://images.cocodataset.org/zips/val2017.zip"
    assert by_name["annotations"].filename == "annotations_trainval2017.zip"
    for a in COCO2017:
        assert a.size and a.size > 10 ** 8 and len(a.md5) == 32
