"""Record gathering: a hook call's prefetch, completed from the EHR's FHIR server — the only network I/O.

For every prefetch template of the trial (CDS Hooks 2.0 "Providing FHIR Resources"):

* key present with a resource or Bundle → used as it is; a searchset with a ``next`` link is
  followed on ``fhirServer`` (a client MAY paginate prefetch);
* key present with ``null`` → "the EHR looked, nothing there";
* key absent, or holding an OperationOutcome (the EHR's query failed) → the rendered template is
  searched on ``fhirServer`` with ``Authorization: Bearer <fhirAuthorization.access_token>``,
  following ``next`` links to the last page.

Missing keys are fetched concurrently, all under ONE deadline per hook call (``TRIALCDS_FETCH_DEADLINE``).
Anything that leaves the record incomplete — no ``fhirServer``, a failed or slow query, a 401, a
``next`` link pointing off the server, an answer over the byte cap — raises ``DataUnavailable``
(HTTP 412): the service never decides on partial data.

Bounds (issue 11), so that one slow or hostile FHIR server costs at most its own calls' deadline:

* the deadline holds for each response *as a whole*: bodies are streamed and the deadline checked
  between chunks, and when it passes, the sockets of the call's unfinished requests are shut down
  (``_Tracker.abort``) — a server that trickles a byte a second, headers or body, cannot stretch
  a read past it;
* each response is capped at ``TRIALCDS_FETCH_MAX_BYTES`` *after* decompression (gzip / deflate
  are inflated here, in bounded steps, so a 65 KB gzip bomb costs at most the cap);
* a connection that overran (deadline, cap, broken body) is closed, never returned to a pool;
* every FHIR server (scheme, host, port) has its own thread pool and connection pool: a server
  that hangs holds only its own threads, never those of calls to another server; calls that use
  only prefetch touch neither;
* pages per key and resources per key are bounded (``TRIALCDS_FHIR_MAX_PAGES`` /
  ``_MAX_RESOURCES``): endless ``next`` links end in a 412.

The access token lives only in the request headers of this module's HTTP calls: it is never
logged, stored or put in an error message.
"""

from __future__ import annotations

import http.cookiejar
import logging
import os
import re
import socket
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, quote, urljoin, urlsplit

import orjson
import requests
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import (AuthorizationError, BaseFHIRError, ForbiddenError, InvalidResponse,
                                    OperationOutcome, ResourceNotFound)
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from cds_service.errors import DataUnavailable
from cds_service.security.fhir_policy import is_within_base
from fhir_mappings import resources_of_bundle

log = logging.getLogger(__name__)
# urllib3 logs every request line at DEBUG, and these query URLs carry the patient id.
logging.getLogger("urllib3.connectionpool").setLevel(logging.INFO)

THREADS_PER_SERVER = 16  # fetch threads (and pooled connections) per FHIR server, per worker process
MAX_SERVERS = 32  # FHIR servers with live pools per process; the least recently used one is dropped
MAX_BYTES = 5 * 1024 * 1024  # per response, decompressed; TRIALCDS_FETCH_MAX_BYTES
CHUNK_BYTES = 64 * 1024
MAX_PAGES = 50  # per key: a patient whose chart needs more pages than this is not screened on a guess
MAX_RESOURCES = 5000  # per key, likewise; both are defaults, set by TRIALCDS_FHIR_MAX_PAGES / _MAX_RESOURCES
CONNECT_TIMEOUT_MAX = 2.0  # seconds; below the deadline so a dead host fails fast

Pair = tuple[dict, str | None]
_ABSENT = object()  # a prefetch key the client did not send (unlike one sent as null)


@dataclass
class GatheredRecord:
    """One patient's resources as (resource, fullUrl) pairs, and notes on how they were obtained."""

    resources: list[Pair] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Job:
    """One key to complete on the FHIR server: a template's first query, or a prefetch's next page."""

    key: str
    path: str
    params: dict[str, list[str]] | None
    is_read: bool = False
    prefetched: bool = False


# --- the entry point ---------------------------------------------------------------------------------

def gather_record(templates: Mapping[str, str], context: Mapping[str, Any], prefetch: Mapping[str, Any] | None,
                  fhir_server: str | None, access_token: str | None, deadline_s: float, *,
                  max_pages: int = MAX_PAGES, max_resources: int = MAX_RESOURCES,
                  max_bytes: int = MAX_BYTES) -> GatheredRecord:
    """Every template key answered, from prefetch or from ``fhir_server``, within ``deadline_s`` seconds."""
    deadline = time.monotonic() + deadline_s
    record, jobs = _use_prefetch(templates, context, prefetch or {}, fhir_server)
    if jobs and not fhir_server:
        keys = ", ".join(sorted({job.key for job in jobs}))
        raise DataUnavailable(f"prefetch incomplete ({keys}) and no fhirServer to complete it from")
    if jobs:
        client = FhirClient(fhir_server, access_token, deadline, max_pages=max_pages, max_resources=max_resources,
                            max_bytes=max_bytes)
        for pairs, note in _run_jobs(jobs, client, deadline):
            record.resources.extend(pairs)
            record.notes.append(note)
    record.resources = _unique(record.resources)
    return record


def _use_prefetch(templates: Mapping[str, str], context: Mapping[str, Any], prefetch: Mapping[str, Any],
                  fhir_server: str | None) -> tuple[GatheredRecord, list[_Job]]:
    record, jobs = GatheredRecord(), []
    for key, template in templates.items():
        value = prefetch.get(key, _ABSENT)
        if value is None:
            continue  # the EHR looked: nothing there
        if not _is_usable(value):
            jobs.append(_first_job(key, render_template(template, context)))
            continue
        if value.get("resourceType") != "Bundle":
            record.resources.append((value, None))
            continue
        record.resources.extend(_bundle_pairs(value))
        next_url = next_link(value)
        if next_url:
            jobs.append(_Job(key, _page_url(next_url, fhir_server, key), None, prefetched=True))
    return record, jobs


def _is_usable(value: Any) -> bool:
    """A resource or a readable Bundle; an OperationOutcome means the EHR's own query failed."""
    if not isinstance(value, dict) or not isinstance(value.get("resourceType"), str):
        return False
    if value["resourceType"] == "Bundle":
        # A Bundle whose entries or links cannot be read is a failed answer, not an empty one.
        return all(isinstance(value.get(name, []), list) for name in ("entry", "link"))
    return value["resourceType"] != "OperationOutcome"


# --- prefetch templates ------------------------------------------------------------------------------

_TOKEN = re.compile(r"\{\{\s*([^{}]+?)\s*\}\}")
_USER_TOKENS = {"userPractitionerId": "Practitioner", "userPractitionerRoleId": "PractitionerRole",
                "userPatientId": "Patient", "userRelatedPersonId": "RelatedPerson"}


class TemplateError(DataUnavailable):
    """A prefetch token the hook's context cannot fill."""


def render_template(template: str, context: Mapping[str, Any]) -> str:
    """``Condition?patient={{context.patientId}}`` → ``Condition?patient=123`` (values URL-quoted)."""
    def fill(match: re.Match[str]) -> str:
        value = _token_value(match.group(1), context)
        if value is None:
            raise TemplateError(f"prefetch token {{{{{match.group(1)}}}}} has no value in the hook context")
        return quote(value, safe="/")
    return _TOKEN.sub(fill, template)


def _token_value(token: str, context: Mapping[str, Any]) -> str | None:
    if token.startswith("context."):
        value = context.get(token.removeprefix("context."))
        return value if isinstance(value, str) and value else None
    resource_type = _USER_TOKENS.get(token)
    user = context.get("userId")
    if resource_type and isinstance(user, str) and user.startswith(f"{resource_type}/"):
        return user.split("/", 1)[1] or None
    return None


def _first_job(key: str, query: str) -> _Job:
    path, _, query_string = query.partition("?")
    if not query_string:
        return _Job(key, path, None, is_read=True)
    return _Job(key, path, parse_qs(query_string, keep_blank_values=True))


# --- paging --------------------------------------------------------------------------------------------

def next_link(bundle: Mapping[str, Any]) -> str | None:
    for link in bundle.get("link") or ():
        if isinstance(link, dict) and link.get("relation") == "next" and isinstance(link.get("url"), str):
            return link["url"]
    return None


def _page_url(url: str, fhir_server: str | None, key: str) -> str:
    """An absolute next-page URL on ``fhir_server``; a link elsewhere is refused, never followed."""
    if not fhir_server:
        raise DataUnavailable(f"{key}: the prefetched searchset has more pages and there is no fhirServer")
    absolute = urljoin(fhir_server.rstrip("/") + "/", url)
    # is_within_base (security/fhir_policy.py) also refuses dot segments, userinfo and encoded slashes.
    if not same_base(absolute, fhir_server) or not is_within_base(fhir_server, absolute):
        # Following it would send the EHR's token to another host.
        raise DataUnavailable(f"{key}: next link points outside fhirServer; not followed")
    # Rebuilt on fhirServer's own spelling (case, default port), the form fhirpy's base check expects.
    target, base = urlsplit(absolute), fhir_server.rstrip("/")
    rest = target.path[len(urlsplit(base).path):]
    return base + rest + (f"?{target.query}" if target.query else "")


def same_base(url: str, base: str) -> bool:
    """True when ``url`` is on ``base``'s scheme, host and port, under its path."""
    target, root = urlsplit(url), urlsplit(base)
    prefix = root.path.rstrip("/") + "/"
    return ((target.scheme, target.hostname, _port(target)) == (root.scheme, root.hostname, _port(root))
            and (target.path.rstrip("/") + "/").startswith(prefix))


def _port(parts: Any) -> int | None:
    try:
        return parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:
        return None


# --- fetching ------------------------------------------------------------------------------------------

def _run_jobs(jobs: list[_Job], client: FhirClient, deadline: float) -> Iterator[tuple[list[Pair], str]]:
    executor = _executor_for(client.url)
    trackers = [_Tracker() for _ in jobs]
    futures: dict[Future, _Tracker] = {executor.submit(_fetch, client, job, tracker): tracker
                                       for job, tracker in zip(jobs, trackers)}
    keys = {future: job.key for future, job in zip(futures, jobs)}
    done, pending = wait(futures, timeout=max(0.0, deadline - time.monotonic()), return_when=FIRST_EXCEPTION)
    failed = next((f for f in done if f.exception() is not None), None)
    for future in pending:
        future.cancel()  # queued ones never start …
        futures[future].abort()  # … running ones lose their sockets now, not at their next read
    if failed is not None:
        raise failed.exception()  # type: ignore[misc]
    if pending:
        late = ", ".join(sorted(keys[f] for f in pending))
        raise DataUnavailable(f"the FHIR server did not answer within {client.deadline_s:g} s ({late})")
    for future in futures:
        yield future.result()


def _fetch(client: FhirClient, job: _Job, tracker: _Tracker) -> tuple[list[Pair], str]:
    started = time.monotonic()
    _local.tracker = tracker  # the connections this job's requests take are registered with it
    try:
        pairs, pages = _fetch_pages(client, job)
    except ResponseTooLarge:
        raise DataUnavailable(f"{job.key}: response too large (over {client.max_bytes} bytes)") from None
    except requests.Timeout:  # the deadline (DeadlinePassed), or a socket timeout that ran out with it
        raise DataUnavailable(f"{job.key}: the FHIR server did not answer within {client.deadline_s:g} s") from None
    except BaseFHIRError as exc:
        raise DataUnavailable(f"{job.key}: {_describe(exc)}") from None
    except requests.RequestException as exc:
        raise DataUnavailable(f"{job.key}: the FHIR server could not be reached ({type(exc).__name__})") from None
    except ValueError:  # fhirpy refusing a URL off its base; _page_url should have caught it first
        raise DataUnavailable(f"{job.key}: a next link could not be followed") from None
    finally:
        _local.tracker = None
    log.info("fetched %s from %s: %d pages, %d resources in %.0f ms", job.key, client.url, pages, len(pairs),
             (time.monotonic() - started) * 1000)
    what = "followed next links of prefetched" if job.prefetched else "fetched"
    return pairs, f"{what} {job.key}: {pages} page{'s' if pages != 1 else ''}"


def _fetch_pages(client: FhirClient, job: _Job) -> tuple[list[Pair], int]:
    body = client.execute(job.path, method="get", params=job.params)
    if job.is_read:
        if not _is_usable(body):
            raise InvalidResponse("the read did not return a resource")
        return [(body, f"{client.url.rstrip('/')}/{job.path}")], 1
    pairs, pages = [], 0
    while True:
        if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
            raise InvalidResponse("the search did not return a Bundle")
        pairs.extend(_bundle_pairs(body))
        pages += 1
        if len(pairs) > client.max_resources:
            raise InvalidResponse(f"more than {client.max_resources} resources")
        url = next_link(body)
        if not url:
            return pairs, pages
        if pages >= client.max_pages:
            raise InvalidResponse(f"more than {client.max_pages} pages")
        body = client.execute(_page_url(url, client.url, job.key), method="get")


def _bundle_pairs(bundle: Mapping[str, Any]) -> list[Pair]:
    """Entries of a Bundle, without the OperationOutcome a server may add as a search-mode 'outcome'."""
    return [(resource, full_url) for resource, full_url in resources_of_bundle(bundle)  # type: ignore[arg-type]
            if not (isinstance(resource, dict) and resource.get("resourceType") == "OperationOutcome")]


def _unique(pairs: list[Pair]) -> list[Pair]:
    """Each resource once: ``_include``d Medications come back from several searches."""
    seen: set[tuple[str, str]] = set()
    unique = []
    for resource, full_url in pairs:
        key = (resource.get("resourceType"), resource.get("id")) if isinstance(resource, dict) else None
        if key and all(isinstance(part, str) and part for part in key):  # malformed ones: kept, noted later
            if key in seen:
                continue
            seen.add(key)  # type: ignore[arg-type]
        unique.append((resource, full_url))
    return unique


def _describe(exc: BaseFHIRError) -> str:
    # Only the class of failure: the server's body may echo the query or the token.
    if isinstance(exc, AuthorizationError):
        return "the FHIR server refused the access token (401)"
    if isinstance(exc, ForbiddenError):
        return "the FHIR server forbade the query (403)"
    if isinstance(exc, ResourceNotFound):
        return "not found on the FHIR server (404)"
    if isinstance(exc, (InvalidResponse, OperationOutcome)):
        return f"the query failed: {exc.args[0] if exc.args and len(str(exc.args[0])) < 120 else 'server error'}"
    return "the query failed"


# --- the HTTP client -------------------------------------------------------------------------------------

class ResponseTooLarge(Exception):
    """A FHIR server's answer grew past the byte cap (counted after decompression)."""


class DeadlinePassed(requests.Timeout):
    """The hook call's fetch deadline passed during a request."""


class FhirClient(SyncFHIRClient):
    """fhirpy's sync client over a pooled ``requests.Session`` per FHIR server, bounded per response.

    fhirpy 2.x opens a new connection per call (``requests.request``; beda-software/fhir-py#107), so
    only the transport of ``_do_request`` is replaced: URL building, headers and fhirpy's exceptions
    stay fhirpy's. Redirects are not followed (they could carry the token elsewhere). Bodies are
    streamed and read by ``read_body`` (deadline, byte cap, bounded decompression).
    """

    def __init__(self, url: str, access_token: str | None, deadline: float, *,
                 max_pages: int = MAX_PAGES, max_resources: int = MAX_RESOURCES, max_bytes: int = MAX_BYTES) -> None:
        super().__init__(url.rstrip("/"), authorization=f"Bearer {access_token}" if access_token else None)
        self.deadline = deadline
        self.max_pages, self.max_resources, self.max_bytes = max_pages, max_resources, max_bytes
        self.deadline_s = max(0.0, deadline - time.monotonic())

    def __repr__(self) -> str:  # never the authorization header
        return f"<FhirClient {self.url}>"

    def _do_request(self, method: str, path: str, data: dict | None = None, params: dict | None = None,
                    extra_headers: dict | None = None, *, returning_status: bool = False) -> Any:
        tracker = getattr(_local, "tracker", None)
        if tracker is not None and tracker.aborted:
            raise DeadlinePassed("deadline passed")
        headers = {**self._build_request_headers(), "Accept-Encoding": "gzip, deflate", **(extra_headers or {})}
        url = self._build_request_url(path, params)
        response = _session_for(self.url).request(method, url, json=data, headers=headers, timeout=self._timeout(),
                                                  allow_redirects=False, stream=True)
        try:
            if not 200 <= response.status_code < 300:
                raise _error_for(response.status_code)
            content = read_body(response, self.deadline, self.max_bytes)
        except BaseException:
            response.close()  # the connection is closed, not returned to the pool mid-answer
            raise
        response.raw.release_conn()  # read to the end: the connection may serve the next request
        try:
            body = orjson.loads(content) if content else None
        except orjson.JSONDecodeError:
            raise InvalidResponse("the answer is not JSON") from None
        return (body, response.status_code) if returning_status else body

    def _timeout(self) -> tuple[float, float]:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise DeadlinePassed("deadline passed")
        return min(remaining, CONNECT_TIMEOUT_MAX), remaining


def read_body(response: requests.Response, deadline: float, max_bytes: int) -> bytes:
    """The whole (decompressed) body, or ``DeadlinePassed`` / ``ResponseTooLarge`` as soon as either is certain.

    Raw bytes are read in chunks and inflated here, ``max_length``-bounded, rather than by urllib3:
    one 64 KB chunk of a gzip bomb would otherwise inflate to 64 MB in a single call.
    """
    encoding = (response.headers.get("Content-Encoding") or "identity").strip().lower()
    if encoding in ("identity", ""):
        inflate = None
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            raise ResponseTooLarge()
    elif encoding in ("gzip", "x-gzip", "deflate"):
        inflate = zlib.decompressobj(wbits=zlib.MAX_WBITS | 32)  # gzip or zlib framing, told by the header
    else:
        raise InvalidResponse(f"unsupported Content-Encoding {encoding[:20]!r}")
    body = bytearray()
    try:
        for chunk in response.raw.stream(CHUNK_BYTES, decode_content=False):
            if time.monotonic() > deadline:
                raise DeadlinePassed("deadline passed")
            while chunk:
                room = max_bytes + 1 - len(body)
                if inflate is None:
                    body += chunk[:room]
                    chunk = b""
                else:
                    try:
                        body += inflate.decompress(chunk, room)
                    except zlib.error:
                        raise InvalidResponse("the answer's compression is broken") from None
                    chunk = inflate.unconsumed_tail
                if len(body) > max_bytes:
                    raise ResponseTooLarge()
    except BaseException:
        # The exception's traceback keeps this frame alive until the cyclic GC runs: free the
        # megabytes now, not whenever that is.
        body.clear()
        inflate = None
        raise
    return bytes(body)


def _error_for(status: int) -> BaseFHIRError:
    if status == 401:
        return AuthorizationError("HTTP 401")
    if status == 403:
        return ForbiddenError("HTTP 403")
    if status in (404, 410):
        return ResourceNotFound(f"HTTP {status}")
    return InvalidResponse(f"HTTP {status}")


# --- per-process shared resources ------------------------------------------------------------------------
# Created lazily and per process id: gunicorn forks workers, and neither threads nor sockets survive a fork.

_shared: dict[str, Any] = {}
_shared_lock = threading.Lock()


def _per_process(name: str, make: Any) -> Any:
    with _shared_lock:
        pid, value = _shared.get(name, (None, None))
        if pid != os.getpid():
            value = make()
            _shared[name] = (os.getpid(), value)
        return value


class _Tracker:
    """The connections one fetch job is using, so that the hook call can cut them at its deadline.

    Shutting a socket down makes a blocked read return at once, whatever it was waiting for (a
    status line, a header, a body trickling in); urllib3 then closes the connection instead of
    pooling it, and the job's thread is free again.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._connections: list[Any] = []
        self.aborted = False

    def add(self, connection: Any) -> None:
        with self._lock:
            if self.aborted:
                _shut(connection)
            self._connections.append(connection)

    def discard(self, connection: Any) -> None:
        with self._lock:
            if connection in self._connections:
                self._connections.remove(connection)

    def abort(self) -> None:
        with self._lock:
            self.aborted = True
            for connection in self._connections:
                _shut(connection)


def _shut(connection: Any) -> None:
    sock = getattr(connection, "sock", None)
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already closed


_local = threading.local()


class _TrackConnections:
    """Pool mixin: a connection is registered with the running job's tracker while the job holds it."""

    def _get_conn(self, timeout: float | None = None) -> Any:
        connection = super()._get_conn(timeout)  # type: ignore[misc]
        tracker = getattr(_local, "tracker", None)
        if tracker is not None:
            tracker.add(connection)
        return connection

    def _put_conn(self, connection: Any) -> None:
        tracker = getattr(_local, "tracker", None)
        if tracker is not None and connection is not None:
            tracker.discard(connection)  # back in the pool: another call's now, never to be cut by this one
        super()._put_conn(connection)  # type: ignore[misc]


class _TrackedHTTPPool(_TrackConnections, HTTPConnectionPool):
    pass


class _TrackedHTTPSPool(_TrackConnections, HTTPSConnectionPool):
    pass


class _TrackedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _TrackedHTTPPool, "https": _TrackedHTTPSPool}


@dataclass
class _ServerPools:
    """One FHIR server's fetch threads and pooled connections."""

    executor: ThreadPoolExecutor
    session: requests.Session


def _server_key(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme.lower(), (parts.hostname or "").lower(), _port(parts)


def _pools_for(url: str) -> _ServerPools:
    servers: OrderedDict[tuple, _ServerPools] = _per_process("servers", OrderedDict)
    key = _server_key(url)
    with _shared_lock:
        pools = servers.get(key)
        if pools is None:
            pools = _ServerPools(ThreadPoolExecutor(THREADS_PER_SERVER, thread_name_prefix="fhir-fetch"),
                                 _new_session())
            servers[key] = pools
            while len(servers) > MAX_SERVERS:
                # Dropped, not shut down: a call may be about to submit to it. Its idle threads end
                # when it is garbage-collected, its connections close with its session.
                servers.popitem(last=False)
        servers.move_to_end(key)
        return pools


def _executor_for(url: str) -> ThreadPoolExecutor:
    return _pools_for(url).executor


def _session_for(url: str) -> requests.Session:
    return _pools_for(url).session


def _new_session() -> requests.Session:
    session = requests.Session()
    # No cookies (one EHR user's session must not ride along with another's token) and no
    # environment credentials (.netrc would be sent to a FHIR server when no token is given).
    session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    session.trust_env = False
    adapter = _TrackedAdapter(pool_connections=4, pool_maxsize=THREADS_PER_SERVER, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
