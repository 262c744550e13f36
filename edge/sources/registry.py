"""Which class opens which kind of source: each kind registers itself here.

A *kind* (csi, v4l2, rtsp, file, folder, synthetic, ...) is what :func:`.uri.parse_uri` makes
of a URI; a *provider* is one way to open it (``jetson_utils``, ``opencv``, ...), a factory
``(uri, SourceURI, ring) -> Source`` with a ``status(kind)`` saying whether it can run here.
Several providers may offer one kind: ``prefer="auto"`` takes the first by priority whose
status is ok, else the last one (its ``open()`` then says what is missing); a named
``prefer`` takes that provider where it offers the kind (a kind with one way to open it,
as folders, ignores it). :func:`availability` is the same rule, as ``openpose-plus info``
prints it.
"""
from __future__ import annotations

from typing import Callable, Dict, Iterable, List, NamedTuple, Optional, Tuple, Union

from openpose_plus.edge import environment as env
from .base import DEFAULT_RING, Source, SourceError
from .uri import SourceURI, add_scheme, parse_uri, schemes

__all__ = ["Provider", "register", "kinds", "providers", "pick", "make_source", "open_source", "availability"]

Factory = Callable[[str, SourceURI, int], Source]
# (uri, parsed) -> None where the provider opens it, else why not (a short phrase)
Accepts = Callable[[str, SourceURI], Optional[str]]


class Provider(NamedTuple):
    kind: str
    name: str                                # what prefer= names: jetson_utils, opencv, ...
    factory: Factory
    status: Callable[[str], env.Status]      # (kind) -> can it open that here, how or why not
    priority: int                            # higher is tried first by prefer="auto"
    accepts: Optional[Accepts] = None        # None: every URI of the kind


_KINDS: Dict[str, List[Provider]] = {}  # in registration order; providers by priority
_LABELS: Dict[str, str] = {}


def _always(kind: str) -> env.Status:
    return env.Status(kind, True, "built in")


def register(kinds: Union[str, Iterable[str]], name: str, factory: Factory,
             status: Optional[Callable[[str], env.Status]] = None, priority: int = 0,
             scheme: Optional[str] = None, label: Optional[str] = None, accepts: Optional[Accepts] = None) -> None:
    """``name`` opens each of ``kinds`` with ``factory``. ``scheme``: the kind brings its own
    ``scheme://`` to the URI grammar; ``label``: its name in :func:`availability`;
    ``accepts(uri, parsed)``: None for the URIs of the kind it opens, else why not.
    Registering the same provider again replaces it (a module reloaded)."""
    kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    for kind in kinds:
        if scheme is not None:
            add_scheme(scheme, kind)
        have = [p for p in _KINDS.get(kind, []) if p.name != name]
        have.append(Provider(kind, name, factory, status or _always, int(priority), accepts))
        have.sort(key=lambda p: -p.priority)  # stable: equal priorities keep their order
        _KINDS[kind] = have
        _LABELS[kind] = label or _LABELS.get(kind) or (kind + "://" if kind in schemes() else kind)


def kinds() -> Tuple[str, ...]:
    """The kinds of source that can be named here (registered ones)."""
    return tuple(_KINDS)


def providers(kind: str) -> Tuple[Provider, ...]:
    return tuple(_KINDS.get(kind, ()))


def pick(kind: str, prefer: str = "auto", uri: Optional[str] = None, where: Optional[SourceURI] = None) -> Provider:
    """The provider that opens ``kind``: ``prefer`` where it offers it, else the first that runs here.
    With ``uri``/``where``, only providers that accept that URI."""
    have = _KINDS.get(kind)
    if not have:
        raise SourceError("no source is registered for %r (known: %s)" % (kind, ", ".join(_KINDS)))
    if prefer != "auto":
        names = sorted({p.name for ps in _KINDS.values() for p in ps})
        if prefer not in names:
            raise SourceError("unknown source provider %r (choose from auto, %s)" % (prefer, ", ".join(names)))
    if uri is not None and where is not None:
        refused = [(p, p.accepts(uri, where)) for p in have if p.accepts is not None]
        no = {p.name: why for p, why in refused if why}
        if prefer in no:  # asked for by name: say why it cannot, rather than open another
            raise SourceError("source %s: %s cannot open it (%s); use prefer=auto" % (uri, prefer, no[prefer]))
        have = [p for p in have if p.name not in no]
        if not have:
            raise SourceError("source %s: nothing here opens it (%s)" % (uri, "; ".join(
                "%s: %s" % kv for kv in no.items())))
    if prefer != "auto":
        for p in have:
            if p.name == prefer:
                return p
    for p in have[:-1]:
        if p.status(kind).ok:
            return p
    return have[-1]


def make_source(uri: str, ring: int = DEFAULT_RING, prefer: str = "auto") -> Source:
    """A closed source for ``uri``; ``prefer`` is auto or a provider (jetson_utils, opencv)."""
    where = parse_uri(uri)
    return pick(where.kind, prefer, uri, where).factory(uri, where, ring)


def open_source(uri: str, ring: int = DEFAULT_RING, prefer: str = "auto") -> Source:
    """An opened source for ``uri`` (raises :class:`SourceError` naming the problem)."""
    return make_source(uri, ring, prefer).open()


def availability() -> List[env.Status]:
    """Which source kinds can be opened here, through what, and why not."""
    out = []
    for kind, have in _KINDS.items():
        statuses = [p.status(kind) for p in have]
        ok = [i for i, s in enumerate(statuses) if s.ok]
        if ok:
            detail = statuses[ok[0]].detail + ("" if ok[0] == 0 else " (no %s)" % have[0].name)
            out.append(env.Status(_LABELS[kind], True, detail))
        else:
            out.append(env.Status(_LABELS[kind], False, "; ".join(s.detail for s in statuses)))
    return out
