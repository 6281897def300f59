"""The client. One `Client` holds one keep-alive connection: use one per
thread (it is not thread-safe)."""

import http.client
import json
import ssl
import struct
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Union

import numpy as np

# numpy dtypes the server accepts, by the protocol's datatype names.
_DATATYPES = {
    np.dtype(np.uint8): "UINT8",
    np.dtype(np.int8): "INT8",
    np.dtype(np.uint16): "UINT16",
    np.dtype(np.int16): "INT16",
    np.dtype(np.int32): "INT32",
    np.dtype(np.int64): "INT64",
    np.dtype(np.float32): "FP32",
    np.dtype(np.float64): "FP64",
}
# The same, little-endian, for decoding binary outputs.
_NUMPY = {
    "UINT8": "<u1",
    "INT8": "<i1",
    "UINT16": "<u2",
    "INT16": "<i2",
    "INT32": "<i4",
    "INT64": "<i8",
    "FP32": "<f4",
    "FP64": "<f8",
}


class EraserError(Exception):
    """An answer other than success: `status` is the HTTP status (0 when the
    server could not be reached), `reason` the server's refusal reason for
    429, 503 and 507 ("overloaded", "disk_full", ...), `retry_after` its
    Retry-After in seconds, when given."""

    def __init__(self, status: int, message: str, reason: Optional[str] = None,
                 retry_after: Optional[float] = None):
        super().__init__(f"{status}: {message}" if status else message)
        self.status = status
        self.message = message
        self.reason = reason
        self.retry_after = retry_after


@dataclass
class InferResult:
    """One inference request's answers, one per row."""
    labels: np.ndarray                  # int64; -1 where rejected
    decisions: List[str]                # clean, certified, waited, partial, ...
    classes: Optional[List[str]]        # class names, when the dataset has them
    margins: Optional[np.ndarray]       # int32; admin tokens (or no tokens) only
    certificates: Optional[List[dict]]  # admin tokens (or no tokens) only
    outputs: Dict[str, Union[np.ndarray, List[str]]] = field(default_factory=dict)
    id: Optional[str] = None


@dataclass
class Deletion:
    """A deletion request as the server reports it (GET /v1/deletions/{seq})."""
    seq: int
    state: str  # "pending" or "applied"
    info: dict  # every field the server sent

    @property
    def applied(self) -> bool:
        return self.state == "applied"


def _decode_bytes(raw: bytes) -> List[str]:
    """BYTES elements in binary: each a 4-byte little-endian length, then it."""
    out, at = [], 0
    while at < len(raw):
        if at + 4 > len(raw):
            raise EraserError(0, "a BYTES output ends inside an element's length")
        (n,) = struct.unpack_from("<I", raw, at)
        at += 4
        if at + n > len(raw):
            raise EraserError(0, "a BYTES output ends inside an element")
        out.append(raw[at:at + n].decode("utf-8"))
        at += n
    return out


class Client:
    """A client of one `eraser serve`.

    url: "http://host:port" or "https://host:port".
    token: a bearer token (`eraser token`), when the server has --auth-file.
    model: the server's --model-name.
    ca_file: the CA (or self-signed certificate) to trust for https; the
      system's store when None. verify=False trusts any certificate (tests
      only).
    timeout: seconds to wait for the server on each call.
    """

    def __init__(self, url: str = "http://127.0.0.1:8080", *,
                 token: Optional[str] = None, model: str = "eraser",
                 ca_file: Optional[str] = None, verify: bool = True,
                 timeout: float = 60.0):
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"url must be http://HOST:PORT or "
                             f"https://HOST:PORT, not {url!r}")
        self._https = parsed.scheme == "https"
        self._host = parsed.hostname
        self._port = parsed.port or (443 if self._https else 80)
        self._timeout = timeout
        self._token = token
        self.model = model
        self._context = None
        if self._https:
            self._context = ssl.create_default_context(cafile=ca_file)
            if not verify:
                self._context.check_hostname = False
                self._context.verify_mode = ssl.CERT_NONE
        self._conn: Optional[http.client.HTTPConnection] = None

    # ---- connection -------------------------------------------------------

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _connect(self) -> http.client.HTTPConnection:
        if self._conn is None:
            if self._https:
                self._conn = http.client.HTTPSConnection(
                    self._host, self._port, timeout=self._timeout,
                    context=self._context)
            else:
                self._conn = http.client.HTTPConnection(
                    self._host, self._port, timeout=self._timeout)
        return self._conn

    def _request(self, method: str, path: str, body: bytes = b"",
                 headers: Optional[Dict[str, str]] = None):
        """(status, headers with lower-case names, body). A kept-alive
        connection that fails before any answer (the server closed it while
        idle) is reopened and the request sent once more. Then the first
        attempt may have reached the server: for inference and reads that
        changes nothing; a deletion sent twice while the first is pending
        is answered with the first (its sequence number), logged once."""
        all_headers = {"Accept": "application/json"}
        if self._token is not None:
            all_headers["Authorization"] = "Bearer " + self._token
        all_headers.update(headers or {})
        for attempt in (0, 1):
            reused = self._conn is not None
            conn = self._connect()
            try:
                conn.request(method, path, body=body or None,
                             headers=all_headers)
                res = conn.getresponse()
                data = res.read()
            except (http.client.RemoteDisconnected, ConnectionResetError,
                    BrokenPipeError, ssl.SSLEOFError) as e:
                self.close()
                if reused and attempt == 0:
                    continue
                raise EraserError(0, f"the server closed the connection "
                                     f"before answering: {e}")
            except TimeoutError as e:
                self.close()
                raise EraserError(0, f"no answer from {self._host}:"
                                     f"{self._port} within {self._timeout} s"
                                     f" (a deletion may have been logged): "
                                     f"{e}")
            except (OSError, http.client.HTTPException) as e:
                self.close()
                raise EraserError(0, f"cannot reach {self._host}:"
                                     f"{self._port}: {e}")
            if res.getheader("Connection", "").lower() == "close":
                self.close()
            return (res.status,
                    {k.lower(): v for k, v in res.getheaders()}, data)
        raise AssertionError("unreachable")

    def _error(self, status: int, headers: Dict[str, str],
               data: bytes) -> EraserError:
        message, reason = data.decode("utf-8", "replace"), None
        try:
            body = json.loads(data)
            message = body.get("error", message)
            reason = body.get("reason")
        except (ValueError, AttributeError):
            pass
        retry = headers.get("retry-after")
        return EraserError(status, message or f"HTTP {status}", reason,
                           float(retry) if retry else None)

    def _json(self, method: str, path: str, body=None,
              ok: Sequence[int] = (200,)) -> dict:
        payload = json.dumps(body).encode() if body is not None else b""
        headers = {"Content-Type": "application/json"} if body is not None \
            else {}
        status, res_headers, data = self._request(method, path, payload,
                                                  headers)
        if status not in ok:
            raise self._error(status, res_headers, data)
        return json.loads(data) if data else {}

    # ---- health and metadata ----------------------------------------------

    def _health(self, path: str) -> bool:
        try:
            return self._request("GET", path)[0] == 200
        except EraserError as e:
            if e.status == 0:
                return False  # not reachable: not live, not ready
            raise

    def live(self) -> bool:
        """The server process answers (False when it cannot be reached)."""
        return self._health("/v2/health/live")

    def ready(self) -> bool:
        """The server takes requests (False while it shuts down, or when it
        cannot be reached)."""
        return self._health("/v2/health/ready")

    def model_ready(self) -> bool:
        """The model takes requests; raises EraserError for 401 or 403 (a
        token is needed) and 404 (another model name)."""
        status, headers, data = self._request("GET", self._model_path("/ready"))
        if status in (401, 403, 404):
            raise self._error(status, headers, data)
        return status == 200

    def _model_path(self, rest: str = "") -> str:
        return "/v2/models/" + urllib.parse.quote(self.model, safe="") + rest

    def server_metadata(self) -> dict:
        return self._json("GET", "/v2")

    def model_metadata(self) -> dict:
        return self._json("GET", self._model_path())

    def model_config(self) -> dict:
        """The model's configuration in Triton's form."""
        return self._json("GET", self._model_path("/config"))

    def model_statistics(self) -> dict:
        """The statistics extension's $model_stat of the model."""
        return self._json("GET", self._model_path("/stats"))[
            "model_stats"][0]

    # ---- inference ----------------------------------------------------------

    def infer(self, x, *, binary: bool = True,
              outputs: Optional[Sequence[str]] = None,
              request_id: Optional[str] = None,
              timeout_us: Optional[int] = None) -> InferResult:
        """Answers each row of `x`, an array of shape [rows, ...] (a 1-D
        array is one row) in one of the accepted dtypes: uint8 pixel bytes
        for image models, float32 features, or any integer or float type
        the server lists. Binary tensors both ways by default
        (binary=False sends and asks for JSON). `outputs` names the outputs
        wanted (label, decision, class, margin); all by default.
        `timeout_us` (the protocol's parameters.timeout) bounds how long a
        row may wait for unlearning before its fallback answer (partial,
        or rejected), below the server's --max-wait."""
        x = np.asarray(x)
        if x.dtype not in _DATATYPES:
            raise ValueError(f"dtype {x.dtype} is not accepted; use one of "
                             f"{sorted(str(d) for d in _DATATYPES)}")
        if x.ndim == 1:
            x = x.reshape(1, -1)
        if x.ndim < 2 or x.shape[0] == 0:
            raise ValueError("x must hold at least one row")
        datatype = _DATATYPES[x.dtype]
        tensor = {"name": "input", "shape": list(x.shape),
                  "datatype": datatype}
        request: dict = {"inputs": [tensor]}
        if request_id is not None:
            request["id"] = request_id
        if outputs is not None:
            request["outputs"] = [
                {"name": n, "parameters": {"binary_data": binary}}
                for n in outputs]
        parameters: dict = {}
        if timeout_us is not None:
            parameters["timeout"] = int(timeout_us)
        if binary:
            parameters["binary_data_output"] = True
        if parameters:
            request["parameters"] = parameters
        if binary:
            raw = np.ascontiguousarray(
                x, dtype=x.dtype.newbyteorder("<")).tobytes()
            tensor["parameters"] = {"binary_data_size": len(raw)}
            header = json.dumps(request).encode()
            body = header + raw
            headers = {"Content-Type": "application/octet-stream",
                       "Inference-Header-Content-Length": str(len(header))}
        else:
            tensor["data"] = x.reshape(-1).tolist()
            body = json.dumps(request).encode()
            headers = {"Content-Type": "application/json"}
        status, res_headers, data = self._request(
            "POST", self._model_path("/infer"), body, headers)
        if status != 200:
            raise self._error(status, res_headers, data)
        return self._infer_result(res_headers, data)

    @staticmethod
    def _infer_result(headers: Dict[str, str], data: bytes) -> InferResult:
        try:
            return Client._decode_result(headers, data)
        except (ValueError, KeyError, TypeError, struct.error) as e:
            raise EraserError(0, f"the server's answer is malformed: {e!r}")

    @staticmethod
    def _decode_result(headers: Dict[str, str], data: bytes) -> InferResult:
        length = headers.get("inference-header-content-length")
        header_size = int(length) if length is not None else len(data)
        if not 0 <= header_size <= len(data):
            raise ValueError(f"Inference-Header-Content-Length {length} "
                             f"for a {len(data)}-byte answer")
        header = json.loads(data[:header_size])
        at = header_size
        outputs: Dict[str, Union[np.ndarray, List[str]]] = {}
        for o in header.get("outputs", []):
            name, datatype = o["name"], o["datatype"]
            size = o.get("parameters", {}).get("binary_data_size")
            if size is not None:
                raw = data[at:at + size]
                if len(raw) != size:
                    raise EraserError(0, f"output {name} declares {size} "
                                         "bytes the answer does not hold")
                at += size
                value = (_decode_bytes(raw) if datatype == "BYTES" else
                         np.frombuffer(raw, dtype=_NUMPY[datatype]).copy())
            else:
                value = (list(o["data"]) if datatype == "BYTES" else
                         np.asarray(o["data"], dtype=_NUMPY[datatype]))
            outputs[name] = value
        if at != len(data):
            raise ValueError(f"{len(data) - at} bytes after the outputs")
        certificates = header.get("parameters", {}).get("certificates")
        labels = outputs.get("label")
        return InferResult(
            labels=(np.asarray(labels, dtype=np.int64) if labels is not None
                    else np.empty(0, dtype=np.int64)),
            decisions=list(outputs.get("decision", [])),
            classes=outputs.get("class"),
            margins=outputs.get("margin"),
            certificates=certificates,
            outputs=outputs,
            id=header.get("id"))

    # ---- deletions ----------------------------------------------------------

    def delete(self, *, sample: Optional[int] = None,
               owner: Optional[int] = None) -> Deletion:
        """Asks the server to forget a sample or every sample of an owner.
        Returns once the request is durable (202): the server will not
        answer from the data after its deadline, and certifies meanwhile.
        Raises EraserError: 404 unknown sample or owner, 403 a token that
        may not, 507 the server's disk is full (nothing was logged)."""
        if (sample is None) == (owner is None):
            raise ValueError("give exactly one of sample= and owner=")
        body = {"sample": sample} if sample is not None else {"owner": owner}
        info = self._json("POST", "/v1/deletions", body, ok=(202,))
        return Deletion(info["seq"], info["state"], info)

    def deletion(self, seq: Union[int, Deletion]) -> Deletion:
        """The deletion's current state."""
        if isinstance(seq, Deletion):
            seq = seq.seq
        info = self._json("GET", f"/v1/deletions/{int(seq)}")
        return Deletion(info["seq"], info["state"], info)

    def wait_applied(self, seq: Union[int, Deletion],
                     timeout: Optional[float] = None) -> Deletion:
        """Polls until the deletion is applied (its shards retrained without
        it), backing off from 10 ms to 1 s. TimeoutError after `timeout`
        seconds (None: no limit)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = 0.01
        while True:
            d = self.deletion(seq)
            if d.applied:
                return d
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"deletion {d.seq} still pending after "
                                   f"{timeout} s")
            wait = pause if deadline is None else min(
                pause, max(0.0, deadline - time.monotonic()))
            time.sleep(wait)
            pause = min(pause * 2, 1.0)

    def drain(self) -> int:
        """Unlearns everything pending now (admin tokens); returns the
        deletions still pending after (acknowledged meanwhile)."""
        return self._json("POST", "/v1/drain", {})["pending_deletions"]
