"""Fetching COCO 2017: resumable, verified, never half-written.

Each file of a manifest is downloaded to ``NAME.part`` beside its final name, resumed with an
HTTP ``Range`` request when a ``.part`` is already there, and renamed to its final name only
after its size and checksums match. A file that does not match is deleted and the download is
an error that says so: nothing half-written or wrong is ever left under the final name.
Archives are then extracted through a temporary folder, moved into place when complete.

Checksums: COCO does not publish checksums on its site; the md5s below are the ones every
major public download script (PaddleDetection, MMDetection tools, torchvision-style loaders)
checks against, and the sizes are the servers' ``Content-Length``. We know no sha256 for these
files, so the first complete, size- and md5-verified download records its sha256 in
``.downloads.json`` in the destination, and every later verification of that file checks it
(trust on first use).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, TextIO

from openpose_plus.edge.atomic import write_atomic
from openpose_plus.edge.progress import Progress

__all__ = ["Artifact", "COCO2017", "DownloadError", "ChecksumError", "fetch", "extract",
           "download_all", "load_manifest", "LEDGER"]

LEDGER = ".downloads.json"
CHUNK = 1 << 20


@dataclass(frozen=True)
class Artifact:
    """One file to fetch: where from, what it must be, and where its archive unpacks."""

    name: str
    url: str
    size: Optional[int] = None
    md5: Optional[str] = None
    sha256: Optional[str] = None
    extract: bool = True

    @property
    def filename(self) -> str:
        return self.url.rstrip("/").rsplit("/", 1)[-1]


COCO2017: Sequence[Artifact] = (
    Artifact("annotations", "http://images.cocodataset.org/annotations/annotations_trainval2017.zip",
             252907541, md5="f4bbac642086de4f52a3fdda2de5fa2c"),
    Artifact("val2017", "http://images.cocodataset.org/zips/val2017.zip",
             815585330, md5="442b8da7639aecaf257c1dceb8ba8c80"),
    Artifact("train2017", "http://images.cocodataset.org/zips/train2017.zip",
             19336861798, md5="cced6f7f71b7629ddf16f17bbcfab6b2"),
)


class DownloadError(RuntimeError):
    """A file could not be fetched or verified; the message names it."""


class ChecksumError(DownloadError):
    """A complete download is not the file the manifest describes (it has been deleted)."""


# -- the ledger of verified files --------------------------------------------------------------

def _read_ledger(dest: Path) -> Dict[str, Dict[str, object]]:
    try:
        with open(dest / LEDGER, "r", encoding="utf-8") as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_ledger(dest: Path, ledger: Dict[str, Dict[str, object]]) -> None:
    write_atomic(dest / LEDGER, json.dumps(ledger, indent=2, sort_keys=True), durable=True)


# -- fetching -----------------------------------------------------------------------------------

def _hash_file(path: Path, hashers: Iterable["hashlib._Hash"], progress: Optional[Progress] = None) -> None:
    with open(path, "rb") as f:
        while True:
            chunk = f.read(CHUNK)
            if not chunk:
                return
            for h in hashers:
                h.update(chunk)
            if progress is not None:
                progress.advance(len(chunk))


def _verify(art: Artifact, path: Path, size: int, md5: str, sha256: str, ledger: Dict[str, Dict[str, object]]) -> None:
    """Raise ChecksumError unless ``path`` (already hashed) is the artifact."""
    problems = []
    if art.size is not None and size != art.size:
        problems.append("size %d, expected %d" % (size, art.size))
    if art.md5 and md5 != art.md5.lower():
        problems.append("md5 %s, expected %s" % (md5, art.md5))
    want_sha = (art.sha256 or str(ledger.get(art.filename, {}).get("sha256") or "")).lower()
    if want_sha and sha256 != want_sha:
        problems.append("sha256 %s, expected %s%s" % (sha256, want_sha, "" if art.sha256 else
                                                        " (recorded at its first verified download)"))
    if problems:
        raise ChecksumError("%s: downloaded file does not match the manifest (%s); deleted it"
                            % (path.name, "; ".join(problems)))


def _open(url: str, offset: int, timeout: float):
    req = urllib.request.Request(url, headers={"User-Agent": "openpose-plus-downloader"})
    if offset:
        req.add_header("Range", "bytes=%d-" % offset)
    return urllib.request.urlopen(req, timeout=timeout)


class _PartFile:
    """The ``NAME.part`` being downloaded: how much of it there is and its running checksums."""

    def __init__(self, art: Artifact, path: Path, show_progress: bool, stream: Optional[TextIO]) -> None:
        self.art, self.path, self.show_progress, self.stream = art, path, show_progress, stream
        self.have = path.stat().st_size if path.exists() else 0
        if art.size is not None and self.have > art.size:
            path.unlink()  # longer than the file can be: not a prefix of it
            self.have = 0
        self.md5, self.sha = hashlib.md5(), hashlib.sha256()
        if self.have:
            _hash_file(path, (self.md5, self.sha))
        self.progress = Progress(art.size, start=self.have, label=art.filename, unit="B", stream=stream,
                                 enabled=show_progress)

    @property
    def whole(self) -> bool:
        return self.art.size is not None and self.have >= self.art.size

    def restart(self) -> None:
        """The server ignored the Range request: the body starts from the beginning."""
        self.have = 0
        self.md5, self.sha = hashlib.md5(), hashlib.sha256()
        self.progress = Progress(self.art.size, label=self.art.filename, unit="B", stream=self.stream,
                                 enabled=self.show_progress)

    def receive(self, resp) -> None:
        """Append the response body; OSError or URLError when the connection is lost."""
        with open(self.path, "ab" if self.have else "wb") as f:
            while not (self.art.size is not None and self.have > self.art.size):
                chunk = resp.read(CHUNK)
                if not chunk:
                    return
                f.write(chunk)
                self.md5.update(chunk)
                self.sha.update(chunk)
                self.have += len(chunk)
                self.progress.advance(len(chunk))


def _download(part: _PartFile, timeout: float, retries: int) -> None:
    """Fill ``part`` from its URL, resuming where it stops, up to ``retries`` failures."""
    art = part.art
    attempt = 0
    while not (art.size is not None and part.have == art.size):
        try:
            resp = _open(art.url, part.have, timeout)
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and part.have:  # nothing after our offset: the .part is already whole
                return
            raise DownloadError("%s: HTTP %d %s" % (art.url, exc.code, exc.reason)) from None
        except (urllib.error.URLError, OSError) as exc:
            attempt += 1
            if attempt > retries:
                kept = ("%d bytes kept in %s, run again to resume" % (part.have, part.path.name)) if part.have \
                    else "nothing written"
                raise DownloadError("%s: cannot connect (%s); %s" % (art.url, getattr(exc, "reason", exc), kept)) from None
            time.sleep(min(2.0 ** attempt, 10.0) * 0.1)
            continue
        with resp:
            if part.have and getattr(resp, "status", 200) != 206:
                part.restart()
            try:
                part.receive(resp)
            except (OSError, urllib.error.URLError) as exc:
                attempt += 1
                if attempt > retries:
                    raise DownloadError("%s: connection lost (%s); %d bytes kept in %s, run again to resume"
                                        % (art.url, exc, part.have, part.path.name)) from None
                continue
        if art.size is None or part.whole:
            return
        # The server closed early: resume from where it stopped.
        attempt += 1
        if attempt > retries:
            raise DownloadError("%s: connection closed at %d of %d bytes; kept in %s, run again to resume"
                                % (art.url, part.have, art.size, part.path.name))


def _check_present(art: Artifact, dest: Path, final: Path, ledger: Dict[str, Dict[str, object]],
                   show_progress: bool, stream: Optional[TextIO]) -> Path:
    """A final file already there: trusted when the ledger verified it at this size and time,
    else hashed and verified now (and deleted when it does not match)."""
    st = final.stat()
    entry = ledger.get(art.filename, {})
    if entry.get("size") == st.st_size and entry.get("mtime_ns") == st.st_mtime_ns and \
            (art.md5 is None or entry.get("md5") == art.md5.lower()):
        return final
    hashers = [hashlib.md5(), hashlib.sha256()]
    prog = Progress(st.st_size, label="verify " + art.filename, unit="B", stream=stream, enabled=show_progress)
    _hash_file(final, hashers, prog)
    prog.close()
    _verify_or_delete(art, final, st.st_size, hashers[0].hexdigest(), hashers[1].hexdigest(), ledger)
    _record(dest, ledger, art, final, hashers[0].hexdigest(), hashers[1].hexdigest())
    return final


def _verify_or_delete(art: Artifact, path: Path, size: int, md5: str, sha256: str,
                      ledger: Dict[str, Dict[str, object]]) -> None:
    try:
        _verify(art, path, size, md5, sha256, ledger)
    except ChecksumError:
        path.unlink()
        raise


def fetch(art: Artifact, dest: os.PathLike | str, show_progress: bool = True, timeout: float = 60.0,
          retries: int = 3, stream: Optional[TextIO] = None) -> Path:
    """Download ``art`` into ``dest`` (resuming a ``.part``), verify it, and return its path.

    A final file already present is verified too (cheaply, when the ledger says it was verified
    at this size and modification time). Raises :class:`ChecksumError` (file deleted) or
    :class:`DownloadError`.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    final = dest / art.filename
    ledger = _read_ledger(dest)
    if final.exists():
        return _check_present(art, dest, final, ledger, show_progress, stream)
    part = _PartFile(art, dest / (art.filename + ".part"), show_progress, stream)
    _download(part, timeout, retries)
    part.progress.close()
    _verify_or_delete(art, part.path, part.have, part.md5.hexdigest(), part.sha.hexdigest(), ledger)
    os.replace(part.path, final)
    _record(dest, ledger, art, final, part.md5.hexdigest(), part.sha.hexdigest())
    return final


def _record(dest: Path, ledger: Dict[str, Dict[str, object]], art: Artifact, path: Path, md5: str, sha: str) -> None:
    st = path.stat()
    ledger[art.filename] = {"url": art.url, "size": st.st_size, "mtime_ns": st.st_mtime_ns, "md5": md5,
                            "sha256": sha, "verified": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    _write_ledger(dest, ledger)


# -- extraction --------------------------------------------------------------------------------

def extract(archive: Path, dest: os.PathLike | str, show_progress: bool = True,
            stream: Optional[TextIO] = None) -> List[Path]:
    """Unpack a zip into ``dest`` through a temporary folder; its top-level entries are moved
    into place only once every member is out (an interrupted extraction leaves nothing)."""
    dest = Path(dest)
    marker = dest / (".%s.extracted" % archive.name)
    if marker.exists():
        return []
    tmp = dest / (".%s.extracting" % archive.name)
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            for m in members:
                target = (tmp / m.filename).resolve()
                if not str(target).startswith(str(tmp.resolve())):
                    raise DownloadError("%s: member %r would unpack outside the destination" % (archive, m.filename))
            prog = Progress(len(members), label="extract " + archive.name, unit="files", stream=stream,
                            enabled=show_progress)
            for m in members:
                zf.extract(m, tmp)
                prog.advance()
            prog.close()
    except zipfile.BadZipFile as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise DownloadError("%s: not a valid zip archive (%s)" % (archive, exc)) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    moved = []
    for entry in sorted(tmp.iterdir()):
        target = dest / entry.name
        if target.is_dir() and entry.is_dir():
            # e.g. annotations/ from two archives: merge file by file.
            for sub in entry.rglob("*"):
                rel = sub.relative_to(entry)
                if sub.is_dir():
                    (target / rel).mkdir(parents=True, exist_ok=True)
                else:
                    (target / rel).parent.mkdir(parents=True, exist_ok=True)
                    os.replace(sub, target / rel)
        else:
            if target.exists():
                shutil.rmtree(target) if target.is_dir() else target.unlink()
            os.replace(entry, target)
        moved.append(target)
    shutil.rmtree(tmp, ignore_errors=True)
    marker.write_text(time.strftime("%Y-%m-%dT%H:%M:%SZ\n", time.gmtime()))
    return moved


# -- manifests and the whole job ----------------------------------------------------------------

def load_manifest(path: os.PathLike | str) -> List[Artifact]:
    """A JSON list of ``{"name", "url", "size", "md5", "sha256", "extract"}`` objects."""
    try:
        with open(path, "r", encoding="utf-8") as f:
            raw = json.load(f)
    except OSError as exc:
        raise DownloadError("%s: cannot read manifest: %s" % (path, exc.strerror or exc)) from None
    except ValueError as exc:
        raise DownloadError("%s: manifest is not valid JSON: %s" % (path, exc)) from None
    if not isinstance(raw, list):
        raise DownloadError("%s: manifest must be a JSON list of files" % path)
    out = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("url"), str) or not isinstance(item.get("name"), str):
            raise DownloadError("%s: entry %d needs at least \"name\" and \"url\"" % (path, i))
        unknown = set(item) - {f for f in Artifact.__dataclass_fields__}
        if unknown:
            raise DownloadError("%s: entry %d has unknown field(s) %s" % (path, i, ", ".join(sorted(unknown))))
        if item.get("size") is None and not item.get("md5") and not item.get("sha256"):
            raise DownloadError("%s: entry %d (%s) has no size or checksum to verify against" % (path, i, item["name"]))
        out.append(Artifact(**item))
    return out


def manifest_json(artifacts: Sequence[Artifact]) -> str:
    return json.dumps([asdict(a) for a in artifacts], indent=2)


def download_all(artifacts: Sequence[Artifact], dest: os.PathLike | str, names: Optional[Sequence[str]] = None,
                 extract_archives: bool = True, remove_archives: bool = False, show_progress: bool = True,
                 log: Callable[[str], None] = lambda s: print(s, file=sys.stderr)) -> List[Path]:
    """Fetch (and unpack) the chosen artifacts into ``dest``; stops at the first error."""
    chosen = list(artifacts)
    if names:
        known = {a.name for a in artifacts}
        bad = [n for n in names if n not in known]
        if bad:
            raise DownloadError("unknown set(s) %s (known: %s)" % (", ".join(bad), ", ".join(sorted(known))))
        chosen = [a for a in artifacts if a.name in names]
    dest = Path(dest)
    paths = []
    for art in chosen:
        marker = dest / (".%s.extracted" % art.filename)
        if remove_archives and marker.exists():
            log("%s: already extracted" % art.name)
            continue
        path = fetch(art, dest, show_progress=show_progress)
        log("%s: verified %s" % (art.name, path))
        if extract_archives and art.extract and path.suffix == ".zip":
            extract(path, dest, show_progress=show_progress)
            if remove_archives:
                path.unlink()
        paths.append(path)
    return paths
